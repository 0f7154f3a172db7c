// SPDX-License-Identifier: MIT OR Apache-2.0
use super::*;
use std::sync::Mutex;

#[test]
fn pattern_is_independent_of_chunking() {
    let mut whole = vec![0u8; 1000];
    Pattern::new(7).fill(&mut whole);
    let mut p = Pattern::new(7);
    let mut pieces = Vec::new();
    for n in [1usize, 3, 8, 13, 64, 911] {
        let mut b = vec![0u8; n];
        p.fill(&mut b);
        pieces.extend_from_slice(&b);
    }
    assert_eq!(&pieces[..1000], &whole[..]);
    let mut other = vec![0u8; 1000];
    Pattern::new(8).fill(&mut other);
    assert_ne!(whole, other);
}

#[test]
fn verify_reports_the_first_wrong_offset() {
    let mut data = vec![0u8; 100];
    Pattern::new(1).fill(&mut data);
    let mut p = Pattern::new(1);
    let mut scratch = Vec::new();
    p.verify(&data[..40], &mut scratch).unwrap();
    data[57] ^= 0x10;
    assert_eq!(p.verify(&data[40..], &mut scratch), Err(57));
}

#[test]
fn checksum_is_independent_of_chunking() {
    let mut data = vec![0u8; 1001];
    Pattern::new(3).fill(&mut data);
    let mut a = Fnv64::default();
    a.update(&data);
    let mut b = Fnv64::default();
    for piece in data.chunks(7) {
        b.update(piece);
    }
    assert_eq!(a.value(), b.value());
    // Padding is not confusable with real zero bytes.
    let mut c = Fnv64::default();
    c.update(&data);
    c.update(&[0]);
    assert_ne!(a.value(), c.value());
    let mut d = data.clone();
    d[500] ^= 4;
    let mut e = Fnv64::default();
    e.update(&d);
    assert_ne!(a.value(), e.value());
}

#[test]
fn header_and_verdict_round_trip() {
    let h = Header {
        direction: Direction::Download,
        amount: Amount::Bytes(12345),
        seed: 99,
    };
    let d = Header::decode(&h.encode()).unwrap();
    assert_eq!(
        (d.direction, d.amount, d.seed),
        (Direction::Download, Amount::Bytes(12345), 99)
    );
    let mut bad = h.encode();
    bad[0] = b'X';
    assert!(Header::decode(&bad).is_err());
    bad = h.encode();
    bad[9] = 7;
    assert!(Header::decode(&bad).is_err());
    let v = Verdict {
        status: V_MISMATCH,
        bytes: 5,
        checksum: 6,
        stalled: 7,
        max_gap_ms: 8,
    }
    .encode();
    let v = Verdict::decode(&v);
    assert_eq!(
        (v.status, v.bytes, v.checksum, v.stalled, v.max_gap_ms),
        (V_MISMATCH, 5, 6, 7, 8)
    );
}

type Events = Arc<Mutex<Vec<ServerEvent>>>;

/// Plain-TCP server on loopback (unit tests need neither root nor MPTCP).
fn start_server() -> (
    SocketAddr,
    Arc<AtomicBool>,
    Events,
    std::thread::JoinHandle<()>,
) {
    let server = Server::bind(ServerConfig {
        listen: vec!["127.0.0.1:0".parse().unwrap()],
        proto: Proto::Tcp,
        limits: Limits {
            timeout: Duration::from_secs(20),
            stall_abort: Duration::from_secs(5),
        },
    })
    .unwrap();
    let addr = server.local_addrs()[0];
    let stop = Arc::new(AtomicBool::new(false));
    let events: Events = Arc::new(Mutex::new(Vec::new()));
    let (s2, e2) = (Arc::clone(&stop), Arc::clone(&events));
    let h = std::thread::spawn(move || {
        let sink: Arc<dyn Fn(ServerEvent) + Send + Sync> =
            Arc::new(move |e| e2.lock().unwrap().push(e));
        server.serve(&s2, None, sink).unwrap();
    });
    (addr, stop, events, h)
}

fn finished(events: &Events) -> Vec<Transfer> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let done: Vec<Transfer> = events
            .lock()
            .unwrap()
            .iter()
            .filter_map(|e| match e {
                ServerEvent::Finished { transfer, .. } => Some(transfer.clone()),
                _ => None,
            })
            .collect();
        if !done.is_empty() || Instant::now() > deadline {
            return done;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn upload_and_download_arrive_intact() {
    let (addr, stop, events, h) = start_server();
    let cfg = ClientConfig::upload_for(addr, 1)
        .proto(Proto::Tcp)
        .amount(Amount::Bytes(3_000_001));
    let up = run_client(&cfg, None, &mut |_| {});
    assert!(up.ok(), "{:?}", up.error);
    assert_eq!(up.bytes, 3_000_001);
    let srv = finished(&events);
    assert_eq!(srv.len(), 1);
    assert!(srv[0].ok(), "{:?}", srv[0].error);
    assert_eq!(
        (srv[0].role, srv[0].bytes, srv[0].checksum),
        (Role::Receiver, up.bytes, up.checksum)
    );

    let down = run_client(
        &cfg.clone().direction(Direction::Download),
        None,
        &mut |_| {},
    );
    assert!(down.ok(), "{:?}", down.error);
    assert_eq!((down.role, down.bytes), (Role::Receiver, 3_000_001));
    stop.store(true, Ordering::Relaxed);
    h.join().unwrap();
}

#[test]
fn duration_mode_reports_intervals() {
    let (addr, stop, _events, h) = start_server();
    let mut lines = 0;
    let cfg = ClientConfig::upload_for(addr, 1)
        .proto(Proto::Tcp)
        .direction(Direction::Download);
    let t = run_client(&cfg, None, &mut |_| lines += 1);
    assert!(t.ok(), "{:?}", t.error);
    assert!(t.bytes > 0);
    assert!(
        lines >= 1 && lines == t.intervals.len(),
        "{lines} vs {:?}",
        t.intervals
    );
    assert!(t.elapsed >= Duration::from_secs(1));
    assert_eq!(t.receiver_stalled_intervals, 0);
    stop.store(true, Ordering::Relaxed);
    h.join().unwrap();
}

/// A hand-made sender that corrupts one byte, or pauses, or stops early.
fn fake_sender(
    addr: SocketAddr,
    corrupt_at: Option<usize>,
    pause: Option<Duration>,
    truncate: bool,
) -> Vec<u8> {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    let hdr = Header {
        direction: Direction::Upload,
        amount: Amount::Bytes(20_000),
        seed: 5,
    };
    s.write_all(&hdr.encode()).unwrap();
    let mut data = vec![0u8; 20_000];
    Pattern::new(5).fill(&mut data);
    let mut sum = Fnv64::default();
    sum.update(&data);
    if let Some(i) = corrupt_at {
        data[i] ^= 1;
    }
    for (k, chunk) in data.chunks(10_000).enumerate() {
        if k == 1 {
            if let Some(p) = pause {
                std::thread::sleep(p);
            }
        }
        // Best effort: after a corrupted record the receiver hangs up early.
        let _ = s.write_all(&(chunk.len() as u32).to_be_bytes());
        let _ = s.write_all(chunk);
    }
    if !truncate {
        let _ = s.write_all(&0u32.to_be_bytes());
        let _ = s.write_all(&20_000u64.to_be_bytes());
        let _ = s.write_all(&sum.value().to_be_bytes());
    }
    let _ = s.shutdown(Shutdown::Write);
    let mut verdict = Vec::new();
    let _ = s.read_to_end(&mut verdict);
    verdict
}

#[test]
fn corrupted_byte_is_caught_at_its_offset() {
    let (addr, stop, events, h) = start_server();
    let verdict = fake_sender(addr, Some(12_345), None, false);
    let srv = finished(&events);
    let err = srv[0].error.clone().unwrap();
    assert!(err.contains("offset 12345"), "{err}");
    assert_eq!(verdict.len(), VERDICT_LEN);
    assert_eq!(verdict[0], V_MISMATCH);
    stop.store(true, Ordering::Relaxed);
    h.join().unwrap();
}

#[test]
fn truncated_stream_is_an_error() {
    let (addr, stop, events, h) = start_server();
    let verdict = fake_sender(addr, None, None, true);
    let srv = finished(&events);
    let err = srv[0].error.clone().unwrap();
    assert!(err.contains("closed before the end"), "{err}");
    assert_eq!(verdict.first(), Some(&V_PROTOCOL));
    stop.store(true, Ordering::Relaxed);
    h.join().unwrap();
}

#[test]
fn a_quiet_second_is_a_stall() {
    let (addr, stop, events, h) = start_server();
    let verdict = fake_sender(addr, None, Some(Duration::from_millis(2100)), false);
    let srv = finished(&events);
    assert!(srv[0].ok(), "{:?}", srv[0].error);
    assert!(
        srv[0].receiver_stalled_intervals >= 1,
        "{:?}",
        srv[0].intervals
    );
    assert!(srv[0].receiver_max_gap >= Duration::from_secs(2));
    let v = Verdict::decode(&verdict[..VERDICT_LEN].try_into().unwrap());
    assert_eq!(v.status, V_OK);
    assert!(v.stalled >= 1 && v.max_gap_ms >= 2000);
    stop.store(true, Ordering::Relaxed);
    h.join().unwrap();
}

#[test]
fn connect_refused_is_reported_not_panicked() {
    // Bind then drop to get a port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let cfg =
        ClientConfig::upload_for(SocketAddr::from(([127, 0, 0, 1], port)), 1).proto(Proto::Tcp);
    let t = run_client(&cfg, None, &mut |_| {});
    let err = t.error.unwrap();
    assert!(err.contains("connect"), "{err}");
}
