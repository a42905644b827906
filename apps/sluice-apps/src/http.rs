//! HTTP/1.1, sans-I/O: an incremental, bounded request parser, the server's routes (a fixed
//! body, `/bytes/N`, files under a root), and the response parser the load generator uses.
//!
//! Bytes come in any split; a request head is parsed once it is complete, with limits on
//! the request line, the head and the number of fields. Nothing in here panics on input:
//! a malformed request is a `400` (or `431`, `505`) and the connection closes after it.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::out::OutQueue;
use crate::session::{Session, Tally};

/// Bounds on what a request head may be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// The request line, without its line ending.
    pub max_request_line: usize,
    /// The whole head: request line, fields, and the empty line.
    pub max_head: usize,
    pub max_fields: usize,
    /// How long a request head may take to arrive, from its first byte (and the first
    /// request from the connection's opening), ns; nginx's `client_header_timeout`.
    pub header_timeout_ns: Option<u64>,
    /// How long a connection may sit idle between requests, ns; nginx's
    /// `keepalive_timeout`.
    pub keepalive_timeout_ns: Option<u64>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_request_line: 8 * 1024,
            max_head: 32 * 1024,
            max_fields: 100,
            header_timeout_ns: Some(60_000_000_000),
            keepalive_timeout_ns: Some(75_000_000_000),
        }
    }
}

/// Why a request head was refused; each maps to a status code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParseError {
    /// Malformed syntax: 400.
    BadRequest,
    /// The request line is longer than the limit: 400.
    LineTooLong,
    /// The head (or the number of fields) exceeds the limit: 431.
    HeadTooLarge,
    /// Not HTTP/1.x: 505.
    Version,
}

impl ParseError {
    pub fn status(self) -> u16 {
        match self {
            ParseError::BadRequest | ParseError::LineTooLong => 400,
            ParseError::HeadTooLarge => 431,
            ParseError::Version => 505,
        }
    }
}

/// A parsed request head; its slices borrow the received bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request<'a> {
    pub method: &'a [u8],
    pub target: &'a [u8],
    /// 0 for HTTP/1.0, 1 for HTTP/1.1 (and later 1.x).
    pub minor: u8,
    /// Whether the connection stays open after the response.
    pub keep_alive: bool,
    pub content_length: u64,
    /// A Transfer-Encoding was given: the body cannot be skipped, so the connection closes.
    pub unframed_body: bool,
}

/// `tchar` of RFC 9110 5.6.2.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn trim_ows(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

/// Splits a head into lines (LF or CRLF endings); the empty line ends it.
fn lines(head: &[u8]) -> impl Iterator<Item = &[u8]> {
    head.split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
}

fn parse_u64(s: &[u8]) -> Option<u64> {
    if s.is_empty() || s.len() > 19 || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    s.iter()
        .try_fold(0u64, |a, &d| a.checked_mul(10)?.checked_add((d - b'0') as u64))
}

/// Whether a comma-separated header value lists `token` (case-insensitively).
fn has_token(value: &[u8], token: &[u8]) -> bool {
    value
        .split(|&b| b == b',')
        .any(|t| trim_ows(t).eq_ignore_ascii_case(token))
}

/// The `HTTP/1.x` version: the minor digit.
fn parse_version(v: &[u8]) -> Result<u8, ParseError> {
    match v {
        [b'H', b'T', b'T', b'P', b'/', maj, b'.', min] if maj.is_ascii_digit() && min.is_ascii_digit() => {
            if *maj == b'1' {
                Ok(min - b'0')
            } else {
                Err(ParseError::Version)
            }
        }
        _ => Err(ParseError::BadRequest),
    }
}

/// A header field line: `name: value`, with the value trimmed.
fn parse_field(line: &[u8]) -> Result<(&[u8], &[u8]), ParseError> {
    let colon = line
        .iter()
        .position(|&b| b == b':')
        .ok_or(ParseError::BadRequest)?;
    let (name, value) = (&line[..colon], trim_ows(&line[colon + 1..]));
    if name.is_empty() || !name.iter().all(|&b| is_tchar(b)) {
        return Err(ParseError::BadRequest);
    }
    if value.iter().any(|&b| (b < 0x20 && b != b'\t') || b == 0x7f) {
        return Err(ParseError::BadRequest);
    }
    Ok((name, value))
}

/// Parses a complete request head (up to and including the empty line).
pub fn parse_request<'a>(head: &'a [u8], limits: &Limits) -> Result<Request<'a>, ParseError> {
    if head.len() > limits.max_head {
        return Err(ParseError::HeadTooLarge);
    }
    let mut it = lines(head);
    let line = it.next().ok_or(ParseError::BadRequest)?;
    if line.len() > limits.max_request_line {
        return Err(ParseError::LineTooLong);
    }
    let mut parts = line.split(|&b| b == b' ');
    let (method, target, version) = match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(m), Some(t), Some(v), None) => (m, t, v),
        _ => return Err(ParseError::BadRequest),
    };
    if method.is_empty() || !method.iter().all(|&b| is_tchar(b)) {
        return Err(ParseError::BadRequest);
    }
    if target.is_empty() || !target.iter().all(|&b| (0x21..0x7f).contains(&b)) {
        return Err(ParseError::BadRequest);
    }
    let minor = parse_version(version)?;
    let mut req = Request {
        method,
        target,
        minor,
        keep_alive: minor >= 1,
        content_length: 0,
        unframed_body: false,
    };
    let (mut hosts, mut fields, mut length) = (0, 0, None);
    let mut ended = false;
    for line in it {
        if line.is_empty() {
            ended = true;
            break;
        }
        fields += 1;
        if fields > limits.max_fields {
            return Err(ParseError::HeadTooLarge);
        }
        if line[0] == b' ' || line[0] == b'\t' || line.contains(&b'\r') {
            return Err(ParseError::BadRequest); // obsolete line folding, or a bare CR
        }
        let (name, value) = parse_field(line)?;
        if name.eq_ignore_ascii_case(b"host") {
            hosts += 1;
        } else if name.eq_ignore_ascii_case(b"connection") {
            if has_token(value, b"close") {
                req.keep_alive = false;
            } else if has_token(value, b"keep-alive") && minor == 0 {
                req.keep_alive = true;
            }
        } else if name.eq_ignore_ascii_case(b"content-length") {
            let n = parse_u64(value).ok_or(ParseError::BadRequest)?;
            if length.is_some_and(|l| l != n) {
                return Err(ParseError::BadRequest);
            }
            length = Some(n);
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            req.unframed_body = true;
        }
    }
    if !ended || (minor >= 1 && hosts != 1) || hosts > 1 || (req.unframed_body && length.is_some()) {
        return Err(ParseError::BadRequest);
    }
    req.content_length = length.unwrap_or(0);
    if req.unframed_body {
        req.keep_alive = false;
    }
    Ok(req)
}

/// Where a complete head ends in `buf` (the index after its empty line), scanning from
/// `from`; `None` if it is not complete yet.
pub fn find_head_end(buf: &[u8], from: usize) -> Option<usize> {
    let mut i = from;
    while let Some(p) = buf.get(i..)?.iter().position(|&b| b == b'\n') {
        let nl = i + p;
        // The line before this LF is empty if the previous byte is LF, or CR then LF.
        let empty = match nl {
            0 => false,
            1 => buf[0] == b'\n',
            _ => buf[nl - 1] == b'\n' || (buf[nl - 1] == b'\r' && buf[nl - 2] == b'\n'),
        };
        if empty {
            return Some(nl + 1);
        }
        i = nl + 1;
    }
    None
}

/// The reason phrase of the codes this server sends.
pub fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        505 => "HTTP Version Not Supported",
        _ => "Unknown",
    }
}

/// A response head with `Content-Length` and, when closing, `Connection: close`.
pub fn response_head(
    status: u16,
    length: u64,
    content_type: &str,
    close: bool,
    http10_keep: bool,
) -> Vec<u8> {
    let mut s = String::with_capacity(128);
    // Writing into a String cannot fail.
    let _ = write!(
        s,
        "HTTP/1.1 {status} {}\r\nServer: sluice\r\nContent-Type: {content_type}\r\nContent-Length: {length}\r\n",
        reason(status)
    );
    if status == 405 {
        s.push_str("Allow: GET, HEAD\r\n");
    }
    if close {
        s.push_str("Connection: close\r\n");
    } else if http10_keep {
        s.push_str("Connection: keep-alive\r\n");
    }
    s.push_str("\r\n");
    s.into_bytes()
}

/// The largest `/bytes/N` served.
pub const MAX_BYTES: u64 = 1 << 40;

/// What the server serves: the fixed body, generated bodies, and files under a root.
#[derive(Debug)]
pub struct Site {
    pub body: Arc<[u8]>,
    /// Canonical root directory, if files are served.
    pub root: Option<PathBuf>,
    pub limits: Limits,
}

/// A response body.
#[derive(Debug)]
enum Body {
    Fixed,
    Pattern(u64),
    File(std::fs::File, u64),
    Text(&'static str),
}

/// Bytes of a file read and queued at a time.
const FILE_CHUNK: usize = 64 * 1024;
/// A file's next chunk is read once less than this is queued: a client that does not
/// read holds this much of it, not the whole file.
const FILE_LOW_WATER: u64 = 128 * 1024;

/// A file being sent, read in chunks as the peer takes them.
#[derive(Debug)]
pub struct FileStream {
    file: std::fs::File,
    left: u64,
}

impl FileStream {
    /// Queues chunks while little is queued. An error (the file shrank, a read failed)
    /// leaves the response short: the connection must close.
    fn fill(&mut self, out: &mut OutQueue) -> std::io::Result<()> {
        use std::io::Read;
        while self.left > 0 && out.len() < FILE_LOW_WATER {
            let n = self.left.min(FILE_CHUNK as u64) as usize;
            let mut v = vec![0u8; n];
            self.file.read_exact(&mut v)?;
            out.push_vec(v);
            self.left -= n as u64;
        }
        Ok(())
    }
}

impl Site {
    /// A site with a fixed body of `body_size` pattern bytes and, optionally, a root
    /// directory (which must exist).
    pub fn new(body_size: usize, root: Option<&Path>) -> std::io::Result<Site> {
        let root = root.map(|r| r.canonicalize()).transpose()?;
        Ok(Site {
            body: Arc::from(crate::out::pattern_vec(body_size)),
            root,
            limits: Limits::default(),
        })
    }

    /// Routes a GET or HEAD: the status, body and content type.
    fn route(&self, target: &[u8], head_only: bool) -> (u16, Body, &'static str) {
        let path = match target.iter().position(|&b| b == b'?' || b == b'#') {
            Some(i) => &target[..i],
            None => target,
        };
        if !path.starts_with(b"/") {
            return (400, Body::Text("bad target\n"), "text/plain");
        }
        if path == b"/" {
            return (200, Body::Fixed, "application/octet-stream");
        }
        if let Some(n) = path.strip_prefix(b"/bytes/") {
            return match parse_u64(n) {
                Some(n) if n <= MAX_BYTES => (200, Body::Pattern(n), "application/octet-stream"),
                _ => (400, Body::Text("bad length\n"), "text/plain"),
            };
        }
        let Some(root) = &self.root else {
            return (404, Body::Text("not found\n"), "text/plain");
        };
        let Some(rel) = percent_decode(path) else {
            return (400, Body::Text("bad escape\n"), "text/plain");
        };
        match resolve(root, &rel) {
            Some(file) => {
                let ct = content_type(&file);
                if head_only {
                    match std::fs::metadata(&file) {
                        Ok(m) => (200, Body::Pattern(m.len()), ct),
                        Err(_) => (404, Body::Text("not found\n"), "text/plain"),
                    }
                } else {
                    let opened = std::fs::File::open(&file).and_then(|f| Ok((f.metadata()?.len(), f)));
                    match opened {
                        Ok((len, f)) => (200, Body::File(f, len), ct),
                        Err(_) => (404, Body::Text("not found\n"), "text/plain"),
                    }
                }
            }
            None => (404, Body::Text("not found\n"), "text/plain"),
        }
    }

    /// Queues the response to `req`; returns its status, and the file whose bytes are
    /// still to be queued (`FileStream::fill`, as the peer takes them).
    pub fn respond(&self, req: &Request, out: &mut OutQueue) -> (u16, Option<FileStream>) {
        let head_only = req.method == b"HEAD";
        let (status, body, ct) = if req.method == b"GET" || head_only {
            self.route(req.target, head_only)
        } else {
            (405, Body::Text("method not allowed\n"), "text/plain")
        };
        let len = match &body {
            Body::Fixed => self.body.len() as u64,
            Body::Pattern(n) => *n,
            Body::File(_, n) => *n,
            Body::Text(t) => t.len() as u64,
        };
        out.push_vec(response_head(
            status,
            len,
            ct,
            !req.keep_alive,
            req.keep_alive && req.minor == 0,
        ));
        let mut stream = None;
        if !head_only {
            match body {
                Body::Fixed => out.push_shared(self.body.clone()),
                Body::Pattern(n) => out.push_pattern(n),
                Body::File(file, left) => stream = Some(FileStream { file, left }),
                Body::Text(t) => out.push_bytes(t.as_bytes()),
            }
        }
        (status, stream)
    }

    /// Queues an error response that closes the connection.
    pub fn respond_error(&self, e: ParseError, out: &mut OutQueue) -> u16 {
        let status = e.status();
        let text = reason(status);
        out.push_vec(response_head(
            status,
            text.len() as u64 + 1,
            "text/plain",
            true,
            false,
        ));
        out.push_bytes(text.as_bytes());
        out.push_bytes(b"\n");
        status
    }
}

/// Decodes `%XX` escapes; `None` on a bad escape or a NUL.
pub fn percent_decode(s: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        if s[i] == b'%' {
            let hex = |b: u8| (b as char).to_digit(16);
            let hi = hex(*s.get(i + 1)?)?;
            let lo = hex(*s.get(i + 2)?)?;
            out.push((hi * 16 + lo) as u8);
            i += 3;
        } else {
            out.push(s[i]);
            i += 1;
        }
    }
    (!out.contains(&0)).then_some(out)
}

/// The file under `root` that a decoded path names: no `..` segment, and after resolving
/// symbolic links it must still be inside `root`. A directory serves its `index.html`.
pub fn resolve(root: &Path, path: &[u8]) -> Option<PathBuf> {
    use std::os::unix::ffi::OsStrExt;
    let mut p = root.to_path_buf();
    for seg in path.split(|&b| b == b'/') {
        match seg {
            b"" | b"." => {}
            b".." => return None,
            s => p.push(std::ffi::OsStr::from_bytes(s)),
        }
    }
    let mut p = p.canonicalize().ok()?;
    if !p.starts_with(root) {
        return None;
    }
    if p.is_dir() {
        p = p.join("index.html").canonicalize().ok()?;
        if !p.starts_with(root) {
            return None;
        }
    }
    p.is_file().then_some(p)
}

fn content_type(p: &Path) -> &'static str {
    match p.extension().and_then(|e| e.to_str()) {
        Some("html" | "htm") => "text/html",
        Some("txt") => "text/plain",
        Some("css") => "text/css",
        Some("js") => "text/javascript",
        Some("json") => "application/json",
        Some("png") => "image/png",
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("svg") => "image/svg+xml",
        _ => "application/octet-stream",
    }
}

/// The server side of one HTTP connection.
#[derive(Debug)]
pub struct HttpSession {
    site: Arc<Site>,
    /// A partial head carried over between inputs.
    buf: Vec<u8>,
    /// Where to resume looking for the end of the head in `buf`.
    scan: usize,
    /// Request body bytes still to skip.
    body_left: u64,
    /// No more requests: the connection closes after the queued responses.
    closing: bool,
    /// The file of the response being sent; requests after it wait.
    file: Option<FileStream>,
    /// When the first byte of the request head being received arrived.
    head_since: Option<u64>,
    /// Requests answered on this connection.
    served: u64,
}

impl HttpSession {
    pub fn new(site: Arc<Site>) -> HttpSession {
        HttpSession {
            site,
            buf: Vec::new(),
            scan: 0,
            body_left: 0,
            closing: false,
            file: None,
            head_since: None,
            served: 0,
        }
    }

    /// Queues more of the file being sent; at its end (or on an error, which closes the
    /// connection: the response is short) it is dropped.
    fn send_file(&mut self, out: &mut OutQueue) {
        if let Some(f) = &mut self.file {
            if f.fill(out).is_err() {
                self.closing = true;
                self.file = None;
            } else if f.left == 0 {
                self.file = None;
            }
        }
    }

    /// Answers one complete head; returns whether the connection continues.
    fn answer(
        site: &Site,
        head: &[u8],
        out: &mut OutQueue,
        t: &mut Tally,
        file: &mut Option<FileStream>,
    ) -> Result<u64, ()> {
        t.requests += 1;
        match parse_request(head, &site.limits) {
            Ok(req) => {
                let (status, stream) = site.respond(&req, out);
                *file = stream;
                if status >= 400 {
                    t.errors += 1;
                }
                if req.keep_alive {
                    Ok(req.content_length)
                } else {
                    Err(())
                }
            }
            Err(e) => {
                site.respond_error(e, out);
                t.errors += 1;
                Err(())
            }
        }
    }

    /// The head in `data` is too long to ever complete: which error that is.
    fn overflow_error(&self, data: &[u8]) -> ParseError {
        let first_line = data.iter().position(|&b| b == b'\n').unwrap_or(data.len());
        if first_line > self.site.limits.max_request_line {
            ParseError::LineTooLong
        } else {
            ParseError::HeadTooLarge
        }
    }
}

impl Session for HttpSession {
    fn input(&mut self, data: &[u8], out: &mut OutQueue, t: &mut Tally, now: u64) -> usize {
        let limits = self.site.limits;
        let mut used = 0;
        while used < data.len() && !self.closing && self.wants_input(out) {
            let rest = &data[used..];
            if self.body_left > 0 {
                let k = (self.body_left.min(rest.len() as u64)) as usize;
                self.body_left -= k as u64;
                used += k;
                continue;
            }
            if self.buf.is_empty() {
                // Empty lines before a request line are ignored (RFC 9112 2.2).
                if rest[0] == b'\r' || rest[0] == b'\n' {
                    used += 1;
                    continue;
                }
                match find_head_end(rest, 0) {
                    Some(end) => {
                        used += end;
                        self.served += 1;
                        self.head_since = None;
                        match Self::answer(&self.site, &rest[..end], out, t, &mut self.file) {
                            Ok(body) => self.body_left = body,
                            Err(()) => self.closing = true,
                        }
                        self.send_file(out);
                    }
                    None => {
                        let line_open = !rest.contains(&b'\n') && rest.len() > limits.max_request_line;
                        if rest.len() > limits.max_head || line_open {
                            let e = self.overflow_error(rest);
                            self.site.respond_error(e, out);
                            t.requests += 1;
                            t.errors += 1;
                            self.closing = true;
                            return data.len();
                        }
                        self.buf.extend_from_slice(rest);
                        self.scan = self.buf.len().saturating_sub(3);
                        self.head_since.get_or_insert(now);
                        used = data.len();
                    }
                }
            } else {
                // Continue a partial head, taking no more than the limit allows.
                let room = (limits.max_head + 1).saturating_sub(self.buf.len());
                let take = rest.len().min(room.max(1));
                let old = self.buf.len();
                self.buf.extend_from_slice(&rest[..take]);
                match find_head_end(&self.buf, self.scan) {
                    Some(end) => {
                        used += end.saturating_sub(old);
                        let head = std::mem::take(&mut self.buf);
                        self.served += 1;
                        self.head_since = None;
                        match Self::answer(&self.site, &head[..end], out, t, &mut self.file) {
                            Ok(body) => self.body_left = body,
                            Err(()) => self.closing = true,
                        }
                        self.send_file(out);
                        self.buf = head;
                        self.buf.clear();
                        self.scan = 0;
                    }
                    None => {
                        used += take;
                        let line_open =
                            !self.buf.contains(&b'\n') && self.buf.len() > limits.max_request_line;
                        if self.buf.len() > limits.max_head || line_open {
                            let e = self.overflow_error(&self.buf);
                            self.site.respond_error(e, out);
                            t.requests += 1;
                            t.errors += 1;
                            self.closing = true;
                            self.buf = Vec::new();
                            return data.len();
                        }
                        self.scan = self.buf.len().saturating_sub(3);
                    }
                }
            }
        }
        if self.closing {
            // Whatever follows a closing request is not answered.
            return data.len();
        }
        used
    }

    fn eof(&mut self, _out: &mut OutQueue, _t: &mut Tally, _now: u64) {
        // A partial request at the end of the stream gets no answer.
        self.closing = true;
    }

    fn produce(&mut self, out: &mut OutQueue, _t: &mut Tally, _now: u64) {
        self.send_file(out);
    }

    fn wants_input(&self, out: &OutQueue) -> bool {
        self.file.is_none() && out.len() < crate::session::HIGH_WATER
    }

    fn finished(&self) -> bool {
        self.closing && self.file.is_none()
    }

    /// A head must arrive within `header_timeout` of its first byte (the first request,
    /// of the connection's opening); between requests, `keepalive_timeout` of idleness.
    fn deadline(&self, last_input: u64) -> Option<u64> {
        let l = &self.site.limits;
        if self.closing || self.file.is_some() {
            return None;
        }
        let (since, limit) = match self.head_since {
            Some(t) => (t, l.header_timeout_ns),
            None if self.body_left > 0 || self.served == 0 => (last_input, l.header_timeout_ns),
            None => (last_input, l.keepalive_timeout_ns),
        };
        limit.map(|d| since.saturating_add(d))
    }
}

/// A response head as the client sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ResponseHead {
    pub status: u16,
    pub content_length: u64,
    pub close: bool,
}

/// Parses a complete response head; `None` if malformed or without a `Content-Length`.
pub fn parse_response(head: &[u8]) -> Option<ResponseHead> {
    let mut it = lines(head);
    let line = it.next()?;
    let mut parts = line.splitn(3, |&b| b == b' ');
    let minor = match parts.next()? {
        [b'H', b'T', b'T', b'P', b'/', b'1', b'.', m] if m.is_ascii_digit() => m - b'0',
        _ => return None,
    };
    let code = parts.next()?;
    if code.len() != 3 {
        return None;
    }
    let status = parse_u64(code)? as u16;
    let mut head = ResponseHead {
        status,
        content_length: 0,
        close: minor == 0,
    };
    let mut length = None;
    for line in it {
        if line.is_empty() {
            break;
        }
        let (name, value) = parse_field(line).ok()?;
        if name.eq_ignore_ascii_case(b"content-length") {
            length = Some(parse_u64(value)?);
        } else if name.eq_ignore_ascii_case(b"connection") {
            if has_token(value, b"close") {
                head.close = true;
            } else if has_token(value, b"keep-alive") {
                head.close = false;
            }
        }
    }
    head.content_length = length?;
    Some(head)
}

#[cfg(test)]
mod tests;
