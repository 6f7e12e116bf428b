//! A TCP relay standing in for a load balancer: clients connect to it, it forwards each
//! connection to the current backend; `switch` points it at another backend and drops the
//! connections in flight, as a load balancer does when a backend dies.

use std::sync::{Arc, Mutex};

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

pub struct Proxy {
    addr: String,
    backend: Arc<Mutex<String>>,
    generation: watch::Sender<u64>,
}

impl Proxy {
    pub async fn start(backend: &str) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("addr").to_string();
        let backend = Arc::new(Mutex::new(backend.to_owned()));
        let (generation, _) = watch::channel(0u64);
        let proxy = Proxy {
            addr,
            backend: Arc::clone(&backend),
            generation: generation.clone(),
        };
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let target = backend.lock().expect("backend").clone();
                let mut cut = generation.subscribe();
                tokio::spawn(async move {
                    let Ok(mut outbound) = TcpStream::connect(&target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = cut.changed() => {}
                    }
                });
            }
        });
        proxy
    }

    pub fn addr(&self) -> String {
        self.addr.clone()
    }

    /// New connections go to `backend`; the ones in flight are dropped.
    pub fn switch(&self, backend: &str) {
        *self.backend.lock().expect("backend") = backend.to_owned();
        self.generation.send_modify(|g| *g += 1);
    }
}
