use std::sync::Arc;

use proptest::prelude::*;

use super::*;

fn site(body: usize) -> Arc<Site> {
    Arc::new(Site::new(body, None).unwrap())
}

/// Feeds `input` in pieces of `split` bytes, sending the output as it comes (so that
/// backpressure never stalls), and returns the output, whether the session finished,
/// and the tally.
fn serve_split(site: &Arc<Site>, input: &[u8], split: usize, eof: bool) -> (Vec<u8>, bool, Tally) {
    let (mut s, mut out, mut t) = (HttpSession::new(site.clone()), OutQueue::new(), Tally::new());
    let mut sent = Vec::new();
    for chunk in input.chunks(split.max(1)) {
        let mut c = chunk;
        let mut spins = 0;
        while !c.is_empty() {
            let n = s.input(c, &mut out, &mut t, 0);
            assert!(n <= c.len());
            c = &c[n..];
            sent.extend(out.to_vec());
            out.clear();
            spins += 1;
            assert!(spins < 100_000, "no progress");
        }
    }
    if eof {
        s.eof(&mut out, &mut t, 0);
    }
    sent.extend(out.to_vec());
    (sent, s.finished(), t)
}

fn serve(site: &Arc<Site>, input: &[u8]) -> (String, bool, Tally) {
    let (o, f, t) = serve_split(site, input, input.len(), false);
    (String::from_utf8_lossy(&o).into_owned(), f, t)
}

fn statuses(out: &str) -> Vec<u16> {
    out.match_indices("HTTP/1.1 ")
        .filter_map(|(i, _)| out.get(i + 9..i + 12)?.parse().ok())
        .collect()
}

#[test]
fn get_root_serves_the_fixed_body_with_content_length() {
    let (out, fin, t) = serve(&site(10), b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(out.starts_with("HTTP/1.1 200 OK\r\n"), "{out}");
    assert!(out.contains("Content-Length: 10\r\n"));
    assert!(out.ends_with("\r\n\r\nabcdefghij"), "{out}");
    assert!(!fin, "keep-alive by default in HTTP/1.1");
    assert_eq!((t.requests, t.errors), (1, 0));
}

#[test]
fn head_has_length_but_no_body() {
    let (out, _, _) = serve(&site(10), b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(
        out.contains("Content-Length: 10\r\n") && out.ends_with("\r\n\r\n"),
        "{out}"
    );
    let (out, _, _) = serve(&site(0), b"HEAD /bytes/12345 HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(
        out.contains("Content-Length: 12345\r\n") && out.ends_with("\r\n\r\n"),
        "{out}"
    );
}

#[test]
fn bytes_n_is_generated() {
    let (out, _, _) = serve(&site(0), b"GET /bytes/30 HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(out.contains("Content-Length: 30\r\n"));
    assert!(out.ends_with("\r\n\r\nabcdefghijklmnopqrstuvwxyzabcd"), "{out}");
    let (out, _, _) = serve(&site(0), b"GET /bytes/0?x=1 HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(out.contains("Content-Length: 0\r\n"));
    let (out, fin, _) = serve(&site(0), b"GET /bytes/lots HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(statuses(&out), [400]);
    assert!(!fin, "a routing error keeps the connection");
}

#[test]
fn pipelined_requests_are_answered_in_order_in_any_split() {
    let input = b"GET /bytes/3 HTTP/1.1\r\nHost: x\r\n\r\nGET /nope HTTP/1.1\r\nHost: x\r\n\r\n\
HEAD / HTTP/1.1\r\nHost: x\r\n\r\nGET /bytes/1 HTTP/1.1\nHost: x\n\n";
    let s = site(4);
    let (whole, _, t) = serve_split(&s, input, input.len(), false);
    assert_eq!(statuses(&String::from_utf8_lossy(&whole)), [200, 404, 200, 200]);
    assert_eq!((t.requests, t.errors), (4, 1));
    for split in 1..20 {
        let (o, fin, _) = serve_split(&s, input, split, false);
        assert_eq!(o, whole, "split {split}");
        assert!(!fin);
    }
}

#[test]
fn connection_close_and_http10() {
    let s = site(1);
    let (out, fin, _) = serve(
        &s,
        b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n",
    );
    assert_eq!(
        statuses(&out),
        [200],
        "nothing after a closing request is answered"
    );
    assert!(out.contains("Connection: close\r\n") && fin);
    let (out, fin, _) = serve(&s, b"GET / HTTP/1.0\r\n\r\n");
    assert!(
        out.contains("Connection: close\r\n") && fin,
        "1.0 closes by default"
    );
    let (out, fin, _) = serve(&s, b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n");
    assert!(out.contains("Connection: keep-alive\r\n") && !fin);
    let (out, fin, _) = serve(&s, b"GET / HTTP/1.1\r\nHost: x\r\nConnection: foo, CLOSE\r\n\r\n");
    assert!(out.contains("Connection: close\r\n") && fin);
}

#[test]
fn other_methods_get_405_and_their_body_is_skipped() {
    let s = site(1);
    let (out, fin, t) = serve(
        &s,
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nGET /GET / HTTP/1.1\r\nHost: x\r\n\r\n",
    );
    assert_eq!(statuses(&out), [405, 200], "{out}");
    assert!(out.contains("Allow: GET, HEAD\r\n"));
    assert!(!fin);
    assert_eq!((t.requests, t.errors), (2, 1));
    let (out, fin, _) = serve(
        &s,
        b"DELETE /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n",
    );
    assert_eq!(statuses(&out), [405]);
    assert!(fin, "a body that cannot be skipped closes the connection");
}

#[test]
fn malformed_requests_get_400_and_close() {
    let s = site(1);
    for bad in [
        &b"GET /\r\n\r\n"[..],
        b"GET  / HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET / HTTP/1.1 \r\nHost: x\r\n\r\n",
        b"G@T / HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET / HTTP/1.1\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost : x\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nNoColon\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 12a\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\ry\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\x01\r\n\r\n",
        b"GET / HTTPS/1.1\r\nHost: x\r\n\r\n",
        b"GET / HTTP/1.10\r\nHost: x\r\n\r\n",
        b"GET x HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET /%zz HTTP/1.1\r\nHost: x\r\n\r\n",
    ] {
        let s = if bad.starts_with(b"GET /%zz") {
            Arc::new(Site::new(1, Some(Path::new("."))).unwrap())
        } else {
            s.clone()
        };
        let (out, fin, t) = serve(&s, bad);
        assert_eq!(statuses(&out), [400], "{:?}: {out}", String::from_utf8_lossy(bad));
        assert_eq!(t.errors, 1);
        if !bad.starts_with(b"GET x") && !bad.starts_with(b"GET /%zz") {
            assert!(
                fin && out.contains("Connection: close\r\n"),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}

#[test]
fn version_not_supported_is_505() {
    let (out, fin, _) = serve(&site(1), b"GET / HTTP/2.0\r\nHost: x\r\n\r\n");
    assert_eq!(statuses(&out), [505]);
    assert!(fin);
}

#[test]
fn limits_give_400_for_the_line_and_431_for_the_head() {
    let s = site(1);
    let long = format!("GET /{} HTTP/1.1\r\nHost: x\r\n\r\n", "a".repeat(9000));
    for split in [1, 100, long.len()] {
        let (out, fin, _) = serve_split(&s, long.as_bytes(), split, false);
        assert_eq!(statuses(&String::from_utf8_lossy(&out)), [400], "split {split}");
        assert!(fin);
    }
    // A request line that never ends is refused once it is over the limit.
    let (out, fin, _) = serve_split(&s, "a".repeat(20_000).as_bytes(), 1000, false);
    assert_eq!(statuses(&String::from_utf8_lossy(&out)), [400]);
    assert!(fin);
    let big = format!(
        "GET / HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "b".repeat(40_000)
    );
    for split in [1, 999, big.len()] {
        let (out, fin, _) = serve_split(&s, big.as_bytes(), split, false);
        assert_eq!(statuses(&String::from_utf8_lossy(&out)), [431], "split {split}");
        assert!(fin);
    }
    let many: String = (0..150).map(|i| format!("X-{i}: y\r\n")).collect();
    let (out, _, _) = serve(&s, format!("GET / HTTP/1.1\r\nHost: x\r\n{many}\r\n").as_bytes());
    assert_eq!(statuses(&out), [431]);
}

#[test]
fn partial_request_then_eof_gets_no_answer() {
    let (out, fin, t) = serve_split(&site(1), b"GET / HTTP/1.1\r\nHo", 5, true);
    assert!(out.is_empty());
    assert!(fin);
    assert_eq!(t.requests, 0);
}

#[test]
fn leading_empty_lines_are_ignored() {
    let (out, _, _) = serve(&site(1), b"\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(statuses(&out), [200]);
}

#[test]
fn files_under_root_and_no_escapes() {
    let dir = std::env::temp_dir().join(format!("sluice-http-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("www/sub")).unwrap();
    std::fs::write(dir.join("www/hello.txt"), "hello file\n").unwrap();
    std::fs::write(dir.join("www/sub/index.html"), "<p>index</p>").unwrap();
    std::fs::write(dir.join("www/a b.txt"), "space").unwrap();
    std::fs::write(dir.join("secret.txt"), "secret").unwrap();
    std::os::unix::fs::symlink(dir.join("secret.txt"), dir.join("www/link.txt")).unwrap();
    let s = Arc::new(Site::new(1, Some(&dir.join("www"))).unwrap());
    let get = |p: &str| serve(&s, format!("GET {p} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes()).0;
    let out = get("/hello.txt");
    assert!(
        out.starts_with("HTTP/1.1 200") && out.ends_with("\r\n\r\nhello file\n"),
        "{out}"
    );
    assert!(out.contains("Content-Type: text/plain\r\n") && out.contains("Content-Length: 11\r\n"));
    assert!(get("/sub/").ends_with("<p>index</p>"));
    assert!(get("/sub").ends_with("<p>index</p>"));
    assert!(get("/a%20b.txt").ends_with("space"));
    assert!(get("/./hello.txt?q=1").ends_with("hello file\n"));
    for p in [
        "/missing",
        "/../secret.txt",
        "/sub/../../secret.txt",
        "/%2e%2e/secret.txt",
        "/link.txt",
        "/%00",
    ] {
        let out = get(p);
        assert!(!out.contains("secret"), "{p}: {out}");
        assert!(statuses(&out) == [404] || statuses(&out) == [400], "{p}: {out}");
    }
    let (out, _, _) = serve(&s, b"HEAD /hello.txt HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(out.contains("Content-Length: 11\r\n") && out.ends_with("\r\n\r\n"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn backpressure_stops_parsing_while_output_is_high() {
    let s = site(0);
    let (mut sess, mut out, mut t) = (HttpSession::new(s), OutQueue::new(), Tally::new());
    let req = b"GET /bytes/1000000 HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n";
    let n = sess.input(req, &mut out, &mut t, 0);
    assert!(n < req.len(), "the second request waits");
    assert!(!sess.wants_input(&out));
    out.clear();
    let m = sess.input(&req[n..], &mut out, &mut t, 0);
    assert_eq!(n + m, req.len());
    assert_eq!(t.requests, 2);
}

#[test]
fn response_parser() {
    let h = parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 12\r\nConnection: close\r\n\r\n").unwrap();
    assert_eq!(
        h,
        ResponseHead {
            status: 200,
            content_length: 12,
            close: true
        }
    );
    assert!(
        parse_response(b"HTTP/1.1 200 OK\r\n\r\n").is_none(),
        "a length is required"
    );
    assert!(parse_response(b"HTTP/1.1 2000 OK\r\nContent-Length: 1\r\n\r\n").is_none());
    assert!(parse_response(b"ICY 200 OK\r\nContent-Length: 1\r\n\r\n").is_none());
    assert_eq!(find_head_end(b"a\r\n\r\nb", 0), Some(5));
    assert_eq!(find_head_end(b"a\n\nb", 0), Some(3));
    assert_eq!(find_head_end(b"a\r\nb\r\n", 0), None);
    assert_eq!(find_head_end(b"\n", 0), None);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn random_bytes_in_random_splits_never_panic(
        data in proptest::collection::vec(any::<u8>(), 0..4000),
        splits in proptest::collection::vec(1usize..300, 1..20),
        eof in any::<bool>(),
    ) {
        let s = site(3);
        let (mut sess, mut out, mut t) = (HttpSession::new(s), OutQueue::new(), Tally::new());
        let mut rest = &data[..];
        let mut i = 0;
        let mut sent = Vec::new();
        while !rest.is_empty() {
            let k = splits[i % splits.len()].min(rest.len());
            i += 1;
            let n = sess.input(&rest[..k], &mut out, &mut t, 0);
            prop_assert!(n <= k);
            rest = &rest[n..];
            sent.extend(out.to_vec());
            out.clear();
            prop_assert!(i < 100_000);
        }
        if eof {
            sess.eof(&mut out, &mut t, 0);
        }
        if !sent.is_empty() {
            prop_assert!(sent.starts_with(b"HTTP/1.1 "));
        }
    }

    #[test]
    fn requests_mixed_with_noise_never_panic(
        parts in proptest::collection::vec(prop_oneof![
            Just(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec()),
            Just(b"HEAD /bytes/7 HTTP/1.1\r\nHost: x\r\n\r\n".to_vec()),
            Just(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc".to_vec()),
            Just(b"\r\n".to_vec()),
            proptest::collection::vec(any::<u8>(), 0..40),
        ], 0..12),
        split in 1usize..64,
    ) {
        let input: Vec<u8> = parts.concat();
        let (out, _, t) = serve_split(&site(2), &input, split, true);
        let (whole, _, t2) = serve_split(&site(2), &input, input.len().max(1), true);
        prop_assert_eq!(out, whole, "the split does not change the answers");
        prop_assert_eq!(t.requests, t2.requests);
    }
}

#[test]
fn deadlines_follow_the_head_and_idleness() {
    let s = site(10);
    let l = s.limits;
    let (hdr, ka) = (l.header_timeout_ns.unwrap(), l.keepalive_timeout_ns.unwrap());
    let (mut sess, mut out, mut t) = (HttpSession::new(s), OutQueue::new(), Tally::new());
    // A new connection: the first head is due header_timeout after it opened.
    assert_eq!(sess.deadline(100), Some(100 + hdr));
    // A head that started at 200 stays due from 200, however slowly it trickles in.
    assert_eq!(sess.input(b"GET / HT", &mut out, &mut t, 200), 8);
    assert_eq!(sess.input(b"TP/1.1\r\n", &mut out, &mut t, 5_000), 8);
    assert_eq!(sess.deadline(5_000), Some(200 + hdr));
    // Complete: answered; then idle between requests: keepalive_timeout after the input.
    let n = sess.input(b"Host: x\r\n\r\n", &mut out, &mut t, 9_000);
    assert_eq!(n, 11);
    assert_eq!(statuses(&String::from_utf8_lossy(&out.to_vec())), [200]);
    assert_eq!(sess.deadline(9_000), Some(9_000 + ka));
    // None once it closes.
    sess.eof(&mut out, &mut t, 10_000);
    assert_eq!(sess.deadline(10_000), None);
}

#[test]
fn a_file_is_streamed_in_chunks_as_the_client_takes_it() {
    let dir = std::env::temp_dir().join(format!("sluice-http-stream-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let data: Vec<u8> = (0..(3 << 20) + 123)
        .map(|i: u32| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(dir.join("f.bin"), &data).unwrap();
    let s = Arc::new(Site::new(1, Some(&dir)).unwrap());
    let (mut sess, mut out, mut t) = (HttpSession::new(s), OutQueue::new(), Tally::new());
    let req = b"GET /f.bin HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n";
    let n = sess.input(req, &mut out, &mut t, 0);
    assert!(n < req.len(), "the second request waits for the file");
    assert!(!sess.wants_input(&out));
    let mut got = Vec::new();
    let mut most = 0;
    for _ in 0..10_000 {
        sess.produce(&mut out, &mut t, 0);
        most = most.max(out.len());
        if out.is_empty() {
            break;
        }
        // The client takes 40,000 bytes at a time.
        let mut buf = vec![0u8; 40_000];
        let k = out.copy_to(&mut buf);
        got.extend_from_slice(&buf[..k]);
        out.consume(k);
    }
    assert!(
        most <= FILE_LOW_WATER + FILE_CHUNK as u64 + 512,
        "{most} bytes queued at once"
    );
    let body_at = got.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    assert_eq!(&got[body_at..], &data[..], "the file, every byte");
    // Then the pipelined request is taken and answered.
    assert!(sess.wants_input(&out));
    assert_eq!(sess.input(&req[n..], &mut out, &mut t, 0), req.len() - n);
    assert_eq!(statuses(&String::from_utf8_lossy(&out.to_vec())), [200]);
    std::fs::remove_dir_all(&dir).unwrap();
}
