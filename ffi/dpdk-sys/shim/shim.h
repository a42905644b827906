/* The DPDK API Sluice uses, as bindgen reads it: DPDK's own headers, plus C wrappers
 * (prefix `sluice_`) for the static inline functions, which have no symbol to link to.
 * Every wrapper is a one-liner over the function it names; see shim.c. */
#ifndef SLUICE_DPDK_SHIM_H
#define SLUICE_DPDK_SHIM_H

#include <stdint.h>
#include <string.h>
#include <rte_config.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_lcore.h>
#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_ether.h>
#include <rte_ip.h>
#include <rte_tcp.h>
#include <rte_thash.h>
#include <rte_version.h>
#include <rte_telemetry.h>
#include <rte_pdump.h>

/* rx/tx bursts */
uint16_t sluice_rx_burst(uint16_t port, uint16_t queue, struct rte_mbuf **pkts, uint16_t n);
uint16_t sluice_tx_burst(uint16_t port, uint16_t queue, struct rte_mbuf **pkts, uint16_t n);

/* mbufs */
struct rte_mbuf *sluice_pktmbuf_alloc(struct rte_mempool *mp);
int sluice_pktmbuf_alloc_bulk(struct rte_mempool *mp, struct rte_mbuf **mbufs, unsigned n);
void sluice_pktmbuf_free(struct rte_mbuf *m);
char *sluice_pktmbuf_prepend(struct rte_mbuf *m, uint16_t len);
char *sluice_pktmbuf_append(struct rte_mbuf *m, uint16_t len);
char *sluice_pktmbuf_adj(struct rte_mbuf *m, uint16_t len);
int sluice_pktmbuf_trim(struct rte_mbuf *m, uint16_t len);
int sluice_pktmbuf_chain(struct rte_mbuf *head, struct rte_mbuf *tail);
/* Appends a copy of `len` bytes at `data` to the chain `head`, in mbufs allocated in one
 * bulk call and linked behind its last segment: from `large` (may be NULL) when the bytes
 * do not fit one of head's pool's buffers and it has enough, else from head's pool.
 * Returns 0, or -1 (no mbufs, or too many segments) with the chain unchanged. */
int sluice_pktmbuf_append_copy(struct rte_mbuf *head, struct rte_mempool *large, const void *data, uint32_t len);
/* Appends `len` bytes at `data` inside mbuf `m` to the chain `head` by reference: an
 * indirect mbuf from head's pool attached to m (m's reference count grows until the
 * indirect one is freed). Returns 0, or -1 when no mbuf is free or the chain is full. */
int sluice_pktmbuf_chain_ref(struct rte_mbuf *head, struct rte_mbuf *m, const void *data, uint16_t len);
/* Adds `value` to the reference count of every segment of the chain `m`. */
void sluice_pktmbuf_refcnt_update_chain(struct rte_mbuf *m, int16_t value);
uint16_t sluice_mbuf_refcnt_read(const struct rte_mbuf *m);
uint16_t sluice_mbuf_refcnt_update(struct rte_mbuf *m, int16_t value);
void *sluice_pktmbuf_mtod(struct rte_mbuf *m);
uint16_t sluice_pktmbuf_headroom(const struct rte_mbuf *m);
uint16_t sluice_pktmbuf_tailroom(const struct rte_mbuf *m);
unsigned sluice_mempool_avail_count(const struct rte_mempool *mp);

/* software Toeplitz hash (rte_thash.h), for checking our own */
uint32_t sluice_softrss(uint32_t *input_tuple, uint32_t input_len, const uint8_t *rss_key);

/* environment */
int sluice_errno(void);
unsigned sluice_lcore_id(void);
uint64_t sluice_rdtsc(void);

/* flags bindgen cannot see (function-like or composite macros) */
extern const uint64_t SLUICE_RSS_IP;
extern const uint64_t SLUICE_RSS_TCP;
extern const uint64_t SLUICE_RSS_UDP;
extern const uint64_t SLUICE_MBUF_F_RX_RSS_HASH;
extern const uint64_t SLUICE_ETH_RX_OFFLOAD_IPV4_CKSUM;
extern const uint64_t SLUICE_ETH_RX_OFFLOAD_TCP_CKSUM;
extern const uint64_t SLUICE_ETH_RX_OFFLOAD_UDP_CKSUM;
extern const uint64_t SLUICE_ETH_RX_OFFLOAD_RSS_HASH;
extern const uint64_t SLUICE_ETH_TX_OFFLOAD_IPV4_CKSUM;
extern const uint64_t SLUICE_ETH_TX_OFFLOAD_TCP_CKSUM;
extern const uint64_t SLUICE_ETH_TX_OFFLOAD_UDP_CKSUM;
extern const uint64_t SLUICE_ETH_TX_OFFLOAD_MULTI_SEGS;
extern const uint64_t SLUICE_MBUF_F_TX_IPV4;
extern const uint64_t SLUICE_MBUF_F_TX_IPV6;
extern const uint64_t SLUICE_MBUF_F_TX_IP_CKSUM;
extern const uint64_t SLUICE_MBUF_F_TX_TCP_CKSUM;
extern const uint64_t SLUICE_MBUF_F_TX_TCP_SEG;
extern const uint64_t SLUICE_ETH_TX_OFFLOAD_TCP_TSO;
extern const uint64_t SLUICE_MBUF_F_TX_UDP_CKSUM;
extern const uint64_t SLUICE_MBUF_F_RX_IP_CKSUM_MASK;
extern const uint64_t SLUICE_MBUF_F_RX_IP_CKSUM_BAD;
extern const uint64_t SLUICE_MBUF_F_RX_IP_CKSUM_GOOD;
extern const uint64_t SLUICE_MBUF_F_RX_L4_CKSUM_MASK;
extern const uint64_t SLUICE_MBUF_F_RX_L4_CKSUM_BAD;
extern const uint64_t SLUICE_MBUF_F_RX_L4_CKSUM_GOOD;
extern const uint64_t SLUICE_MBUF_F_RX_L4_CKSUM_NONE;

#endif
