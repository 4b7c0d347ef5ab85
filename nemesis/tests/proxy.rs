//! The proxy backend against real echo servers on loopback.

use nemesis::proxy::ProxyNet;
use nemesis::{Grudge, Network};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::timeout;

const WAIT: Duration = Duration::from_secs(2);

/// Starts an echo server on 127.0.0.1 and returns its port.
async fn echo_server() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (mut read, mut write) = stream.split();
                let _ = tokio::io::copy(&mut read, &mut write).await;
            });
        }
    });
    port
}

/// Two nodes, each an echo server listening on its peer port.
struct Cluster {
    net: ProxyNet,
    ports: Vec<u16>,
}

impl Cluster {
    async fn start() -> Cluster {
        let ports = vec![echo_server().await, echo_server().await];
        let net = ProxyNet::start(2, &ports).unwrap();
        Cluster { net, ports }
    }

    fn peer(&self, from: usize, to: usize) -> SocketAddr {
        self.net.peer_addr(from, to, self.ports[to])
    }

    async fn connect(&self, from: usize, to: usize) -> TcpStream {
        let connect = TcpStream::connect(self.peer(from, to));
        timeout(WAIT, connect).await.unwrap().unwrap()
    }

    /// Whether a fresh connection over `from -> to` carries data both ways.
    async fn link_works(&self, from: usize, to: usize) -> bool {
        match timeout(WAIT, TcpStream::connect(self.peer(from, to))).await {
            Ok(Ok(mut stream)) => echoes(&mut stream).await,
            _ => false,
        }
    }
}

/// Sends a line and expects it back.
async fn echoes(stream: &mut TcpStream) -> bool {
    if stream.write_all(b"ping\n").await.is_err() {
        return false;
    }
    let mut buf = [0u8; 5];
    let read = timeout(WAIT, stream.read_exact(&mut buf)).await;
    matches!(read, Ok(Ok(_))) && &buf == b"ping\n"
}

/// Whether the connection delivers nothing more: closed or reset.
async fn closed(stream: &mut TcpStream) -> bool {
    let _ = stream.write_all(b"ping\n").await;
    let mut buf = [0u8; 5];
    matches!(
        timeout(WAIT, stream.read(&mut buf)).await,
        Ok(Ok(0)) | Ok(Err(_))
    )
}

fn cut_both_ways() -> Grudge {
    Grudge::from_components(2, &[vec![0], vec![1]])
}

#[tokio::test]
async fn data_passes_through_a_healed_link() {
    let cluster = Cluster::start().await;
    assert_ne!(
        cluster.peer(0, 1).port(),
        cluster.ports[1],
        "must go through a proxy"
    );
    assert!(cluster.link_works(0, 1).await);
    assert!(cluster.link_works(1, 0).await);
}

#[tokio::test]
async fn cutting_a_link_closes_its_open_connections() {
    let cluster = Cluster::start().await;
    let mut stream = cluster.connect(0, 1).await;
    assert!(echoes(&mut stream).await);

    cluster.net.partition(&cut_both_ways()).unwrap();
    assert!(closed(&mut stream).await);
}

#[tokio::test]
async fn a_cut_link_carries_no_new_connections() {
    let cluster = Cluster::start().await;
    cluster.net.partition(&cut_both_ways()).unwrap();
    assert!(!cluster.link_works(0, 1).await);
    assert!(!cluster.link_works(1, 0).await);
}

#[tokio::test]
async fn healing_lets_connections_through_again() {
    let cluster = Cluster::start().await;
    cluster.net.partition(&cut_both_ways()).unwrap();
    assert!(!cluster.link_works(0, 1).await);

    cluster.net.heal().unwrap();
    assert!(cluster.link_works(0, 1).await);
    assert!(cluster.link_works(1, 0).await);
}

#[tokio::test]
async fn cutting_one_direction_leaves_the_other_open() {
    let cluster = Cluster::start().await;
    let mut grudge = Grudge::none(2);
    // Node 1 drops what node 0 sends: only the link 0 -> 1 is cut.
    grudge.add(1, 0);
    cluster.net.partition(&grudge).unwrap();

    assert!(cluster.net.is_cut(0, 1));
    assert!(!cluster.net.is_cut(1, 0));
    assert!(!cluster.link_works(0, 1).await);
    assert!(cluster.link_works(1, 0).await);
}

#[tokio::test]
async fn a_new_partition_replaces_the_old_one() {
    let cluster = Cluster::start().await;
    let mut first = Grudge::none(2);
    first.add(1, 0);
    let mut second = Grudge::none(2);
    second.add(0, 1);
    cluster.net.partition(&first).unwrap();
    cluster.net.partition(&second).unwrap();

    assert!(cluster.link_works(0, 1).await);
    assert!(!cluster.link_works(1, 0).await);
}

#[tokio::test]
async fn teardown_closes_everything() {
    let cluster = Cluster::start().await;
    let mut stream = cluster.connect(0, 1).await;
    assert!(echoes(&mut stream).await);

    cluster.net.teardown().unwrap();
    assert!(closed(&mut stream).await);
    assert!(!cluster.link_works(1, 0).await);
}

#[tokio::test]
async fn ports_other_than_the_peer_port_bypass_the_proxy() {
    let cluster = Cluster::start().await;
    let other = cluster.ports[1].wrapping_add(1);
    let direct = SocketAddr::from(([127, 0, 0, 1], other));
    assert_eq!(cluster.net.peer_addr(0, 1, other), direct);
    assert_eq!(cluster.net.client_addr(1, other), direct);
}

#[tokio::test]
async fn delay_holds_every_byte_and_keeps_their_order() {
    let cluster = Cluster::start().await;
    cluster.net.set_delay(Duration::from_millis(150));
    let mut stream = cluster.connect(0, 1).await;
    let started = tokio::time::Instant::now();
    for i in 0..5u8 {
        stream.write_all(&[b'0' + i]).await.unwrap();
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut back = [0u8; 5];
    timeout(WAIT, stream.read_exact(&mut back))
        .await
        .unwrap()
        .unwrap();

    // There and back through the proxy: the delay counts twice.
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(&back, b"01234");

    cluster.net.set_delay(Duration::ZERO);
    assert!(echoes(&mut stream).await);
}

#[test]
fn starting_outside_a_runtime_is_an_error_not_a_panic() {
    let err = ProxyNet::start(1, &[1]).err().expect("no runtime here");
    assert!(err.to_string().contains("tokio runtime"), "{err}");
}

#[test]
fn refuses_a_port_list_of_the_wrong_length() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let _entered = runtime.enter();
    let err = ProxyNet::start(3, &[1, 2]).err().expect("wrong length");
    assert!(err.to_string().contains("expected one per node"), "{err}");
}
