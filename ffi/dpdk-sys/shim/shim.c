#include "shim.h"

uint16_t sluice_rx_burst(uint16_t port, uint16_t queue, struct rte_mbuf **pkts, uint16_t n)
{ return rte_eth_rx_burst(port, queue, pkts, n); }
uint16_t sluice_tx_burst(uint16_t port, uint16_t queue, struct rte_mbuf **pkts, uint16_t n)
{ return rte_eth_tx_burst(port, queue, pkts, n); }

struct rte_mbuf *sluice_pktmbuf_alloc(struct rte_mempool *mp) { return rte_pktmbuf_alloc(mp); }
int sluice_pktmbuf_alloc_bulk(struct rte_mempool *mp, struct rte_mbuf **mbufs, unsigned n)
{ return rte_pktmbuf_alloc_bulk(mp, mbufs, n); }
void sluice_pktmbuf_free(struct rte_mbuf *m) { rte_pktmbuf_free(m); }
char *sluice_pktmbuf_prepend(struct rte_mbuf *m, uint16_t len) { return rte_pktmbuf_prepend(m, len); }
char *sluice_pktmbuf_append(struct rte_mbuf *m, uint16_t len) { return rte_pktmbuf_append(m, len); }
char *sluice_pktmbuf_adj(struct rte_mbuf *m, uint16_t len) { return rte_pktmbuf_adj(m, len); }
int sluice_pktmbuf_trim(struct rte_mbuf *m, uint16_t len) { return rte_pktmbuf_trim(m, len); }
int sluice_pktmbuf_chain(struct rte_mbuf *head, struct rte_mbuf *tail) { return rte_pktmbuf_chain(head, tail); }
/* Copies `len` bytes into `n` new segments from `pool` chained after `head`'s last. */
static int append_from(struct rte_mbuf *head, struct rte_mempool *pool, const char *p, uint32_t len) {
    enum { MAX = 64 };
    struct rte_mbuf *segs[MAX];
    uint32_t room = rte_pktmbuf_data_room_size(pool) - RTE_PKTMBUF_HEADROOM;
    uint32_t n = (len + room - 1) / room;
    if (n > MAX || head->nb_segs + n > RTE_MBUF_MAX_NB_SEGS)
        return -1;
    if (rte_pktmbuf_alloc_bulk(pool, segs, n) != 0)
        return -1;
    struct rte_mbuf *last = rte_pktmbuf_lastseg(head);
    for (uint32_t i = 0; i < n; i++) {
        uint32_t k = len < room ? len : room;
        /* glibc's memcpy (AVX-512 where the CPU has it), not rte_memcpy built for
         * -march=corei7's SSE: this copy is the bulk sender's largest cost. */
        memcpy(rte_pktmbuf_mtod(segs[i], char *), p, k);
        segs[i]->data_len = (uint16_t)k;
        segs[i]->pkt_len = k;
        last->next = segs[i];
        last = segs[i];
        p += k;
        len -= k;
        head->pkt_len += k;
    }
    head->nb_segs += n;
    return 0;
}
int sluice_pktmbuf_append_copy(struct rte_mbuf *head, struct rte_mempool *large, const void *data, uint32_t len) {
    if (len == 0)
        return 0;
    /* A payload larger than one of `head`'s buffers goes into large buffers while there
     * are some: a quarter of the segments to fill, chain and hand to the NIC. */
    if (large != NULL && len > rte_pktmbuf_data_room_size(head->pool) - RTE_PKTMBUF_HEADROOM
        && append_from(head, large, data, len) == 0)
        return 0;
    return append_from(head, head->pool, data, len);
}
int sluice_pktmbuf_chain_ref(struct rte_mbuf *head, struct rte_mbuf *m, const void *data, uint16_t len) {
    struct rte_mbuf *mi = rte_pktmbuf_alloc(head->pool);
    if (mi == NULL)
        return -1;
    rte_pktmbuf_attach(mi, m);
    mi->data_off = (uint16_t)((const char *)data - (const char *)mi->buf_addr);
    mi->data_len = len;
    mi->pkt_len = len;
    if (rte_pktmbuf_chain(head, mi) != 0) {
        rte_pktmbuf_free(mi);
        return -1;
    }
    return 0;
}
void sluice_pktmbuf_refcnt_update_chain(struct rte_mbuf *m, int16_t value) {
    for (; m != NULL; m = m->next)
        rte_mbuf_refcnt_update(m, value);
}
uint16_t sluice_mbuf_refcnt_read(const struct rte_mbuf *m) { return rte_mbuf_refcnt_read(m); }
uint16_t sluice_mbuf_refcnt_update(struct rte_mbuf *m, int16_t value) { return rte_mbuf_refcnt_update(m, value); }
void *sluice_pktmbuf_mtod(struct rte_mbuf *m) { return rte_pktmbuf_mtod(m, void *); }
uint16_t sluice_pktmbuf_headroom(const struct rte_mbuf *m) { return rte_pktmbuf_headroom(m); }
uint16_t sluice_pktmbuf_tailroom(const struct rte_mbuf *m) { return rte_pktmbuf_tailroom(m); }
unsigned sluice_mempool_avail_count(const struct rte_mempool *mp) { return rte_mempool_avail_count(mp); }

uint32_t sluice_softrss(uint32_t *input_tuple, uint32_t input_len, const uint8_t *rss_key)
{ return rte_softrss(input_tuple, input_len, rss_key); }

int sluice_errno(void) { return rte_errno; }
unsigned sluice_lcore_id(void) { return rte_lcore_id(); }
uint64_t sluice_rdtsc(void) { return rte_rdtsc(); }

const uint64_t SLUICE_RSS_IP = RTE_ETH_RSS_IP;
const uint64_t SLUICE_RSS_TCP = RTE_ETH_RSS_TCP;
const uint64_t SLUICE_RSS_UDP = RTE_ETH_RSS_UDP;
const uint64_t SLUICE_MBUF_F_RX_RSS_HASH = RTE_MBUF_F_RX_RSS_HASH;
const uint64_t SLUICE_ETH_RX_OFFLOAD_IPV4_CKSUM = RTE_ETH_RX_OFFLOAD_IPV4_CKSUM;
const uint64_t SLUICE_ETH_RX_OFFLOAD_TCP_CKSUM = RTE_ETH_RX_OFFLOAD_TCP_CKSUM;
const uint64_t SLUICE_ETH_RX_OFFLOAD_UDP_CKSUM = RTE_ETH_RX_OFFLOAD_UDP_CKSUM;
const uint64_t SLUICE_ETH_RX_OFFLOAD_RSS_HASH = RTE_ETH_RX_OFFLOAD_RSS_HASH;
const uint64_t SLUICE_ETH_TX_OFFLOAD_IPV4_CKSUM = RTE_ETH_TX_OFFLOAD_IPV4_CKSUM;
const uint64_t SLUICE_ETH_TX_OFFLOAD_TCP_CKSUM = RTE_ETH_TX_OFFLOAD_TCP_CKSUM;
const uint64_t SLUICE_ETH_TX_OFFLOAD_UDP_CKSUM = RTE_ETH_TX_OFFLOAD_UDP_CKSUM;
const uint64_t SLUICE_ETH_TX_OFFLOAD_MULTI_SEGS = RTE_ETH_TX_OFFLOAD_MULTI_SEGS;
const uint64_t SLUICE_MBUF_F_TX_IPV4 = RTE_MBUF_F_TX_IPV4;
const uint64_t SLUICE_MBUF_F_TX_IPV6 = RTE_MBUF_F_TX_IPV6;
const uint64_t SLUICE_MBUF_F_TX_IP_CKSUM = RTE_MBUF_F_TX_IP_CKSUM;
const uint64_t SLUICE_MBUF_F_TX_TCP_CKSUM = RTE_MBUF_F_TX_TCP_CKSUM;
const uint64_t SLUICE_MBUF_F_TX_TCP_SEG = RTE_MBUF_F_TX_TCP_SEG;
const uint64_t SLUICE_ETH_TX_OFFLOAD_TCP_TSO = RTE_ETH_TX_OFFLOAD_TCP_TSO;
const uint64_t SLUICE_MBUF_F_TX_UDP_CKSUM = RTE_MBUF_F_TX_UDP_CKSUM;
const uint64_t SLUICE_MBUF_F_RX_IP_CKSUM_MASK = RTE_MBUF_F_RX_IP_CKSUM_MASK;
const uint64_t SLUICE_MBUF_F_RX_IP_CKSUM_BAD = RTE_MBUF_F_RX_IP_CKSUM_BAD;
const uint64_t SLUICE_MBUF_F_RX_L4_CKSUM_MASK = RTE_MBUF_F_RX_L4_CKSUM_MASK;
const uint64_t SLUICE_MBUF_F_RX_L4_CKSUM_BAD = RTE_MBUF_F_RX_L4_CKSUM_BAD;
const uint64_t SLUICE_MBUF_F_RX_IP_CKSUM_GOOD = RTE_MBUF_F_RX_IP_CKSUM_GOOD;
const uint64_t SLUICE_MBUF_F_RX_L4_CKSUM_GOOD = RTE_MBUF_F_RX_L4_CKSUM_GOOD;
const uint64_t SLUICE_MBUF_F_RX_L4_CKSUM_NONE = RTE_MBUF_F_RX_L4_CKSUM_NONE;
