//! A tiny NFS v4.1 test client over real TCP: encodes calls with nfs-wire, decodes replies.

#![allow(dead_code)] // each test binary uses a different subset

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bucketfs_nfs_server::{
    FileSystem, MemClientRegistry, MemFs, MemOpenStore, NfsServer, ServerConfig, serve,
};
use bucketfs_nfs_wire::nfs::ops::*;
use bucketfs_nfs_wire::nfs::types::{Opaque, SessionId};
use bucketfs_nfs_wire::nfs::{CompoundArgs, CompoundBody, CompoundRes, NfsArgOp, NfsResOp};
use bucketfs_nfs_wire::rpc::{AuthSys, Credential, NFS_PROGRAM, NFS_V4, encode_call_header};
use bucketfs_nfs_wire::xdr::{Decoder, Encoder};
use bucketfs_nfs_wire::{RecordReader, encode_record};
use bucketfs_runtime::SystemClock;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

pub struct TestServer<F = MemFs> {
    pub addr: SocketAddr,
    pub server: Arc<NfsServer<F>>,
    _stop: oneshot::Sender<()>,
}

/// The write verifier test servers use; tests compare WRITE and COMMIT answers with it.
pub const WRITE_VERIFIER: [u8; 8] = *b"bootverf";

pub async fn start(fs: MemFs) -> TestServer<MemFs> {
    start_with(fs, ServerConfig::default()).await
}

pub async fn start_with<F: FileSystem>(fs: F, config: ServerConfig) -> TestServer<F> {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = Arc::new(NfsServer::new(
        fs,
        Arc::new(MemClientRegistry::new(0x1234)),
        Arc::new(MemOpenStore::new(0x1234)),
        Arc::new(SystemClock),
        config,
        WRITE_VERIFIER,
        0x1234,
    ));
    let (tx, rx) = oneshot::channel::<()>();
    tokio::spawn(serve(listener, Arc::clone(&server), async move {
        let _ = rx.await;
    }));
    TestServer {
        addr,
        server,
        _stop: tx,
    }
}

pub fn root_cred() -> Credential {
    Credential::Sys(AuthSys {
        stamp: 1,
        machine_name: b"test".to_vec(),
        uid: 0,
        gid: 0,
        gids: vec![],
    })
}

/// A decoded RPC reply: accept_stat and, for SUCCESS, the COMPOUND4res.
#[derive(Debug)]
pub struct Reply {
    pub xid: u32,
    pub accept_stat: u32,
    pub res: Option<CompoundRes>,
    pub raw: Vec<u8>,
}

pub struct Client {
    stream: TcpStream,
    reader: RecordReader,
    next_xid: u32,
    pub session: Option<SessionId>,
    pub clientid: u64,
    /// Next seqid per slot.
    pub seq: u32,
    pub cred: Credential,
}

impl Client {
    pub async fn connect(addr: SocketAddr) -> Self {
        Self {
            stream: TcpStream::connect(addr).await.unwrap(),
            reader: RecordReader::new(8 << 20),
            next_xid: 1,
            session: None,
            clientid: 0,
            seq: 1,
            cred: root_cred(),
        }
    }

    pub async fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.unwrap();
    }

    /// The next reply record; `None` when the server closed the connection.
    pub async fn recv(&mut self) -> Option<Vec<u8>> {
        let mut buf = vec![0u8; 65536];
        loop {
            if let Some(r) = self.reader.next_record() {
                return Some(r);
            }
            let n = tokio::time::timeout(Duration::from_secs(10), self.stream.read(&mut buf))
                .await
                .expect("reply within 10s")
                .ok()?;
            if n == 0 {
                return None;
            }
            self.reader.feed(&buf[..n]).unwrap();
        }
    }

    pub fn xid(&mut self) -> u32 {
        self.next_xid += 1;
        self.next_xid
    }

    /// A COMPOUND call message (not record-framed).
    pub fn compound_message(&mut self, xid: u32, minor: u32, ops: Vec<NfsArgOp>) -> Vec<u8> {
        let mut e = Encoder::new();
        encode_call_header(xid, NFS_PROGRAM, NFS_V4, 1, &self.cred, &mut e);
        CompoundArgs {
            tag: b"t".to_vec(),
            minor_version: minor,
            body: CompoundBody::Ops { ops, stop: None },
        }
        .encode(&mut e);
        e.into_vec()
    }

    pub async fn call_message(&mut self, message: &[u8]) -> Reply {
        self.send_raw(&encode_record(message)).await;
        let raw = self.recv().await.expect("a reply");
        decode_reply(raw)
    }

    pub async fn compound(&mut self, ops: Vec<NfsArgOp>) -> CompoundRes {
        let xid = self.xid();
        let msg = self.compound_message(xid, 1, ops);
        let reply = self.call_message(&msg).await;
        assert_eq!(reply.xid, xid);
        reply.res.expect("SUCCESS reply")
    }

    pub fn sequence_op(&mut self) -> NfsArgOp {
        let op = NfsArgOp::Sequence(SequenceArgs {
            sessionid: self.session.expect("a session"),
            sequenceid: self.seq,
            slotid: 0,
            highest_slotid: 0,
            cachethis: true,
        });
        self.seq += 1;
        op
    }

    /// SEQUENCE followed by `ops`.
    pub async fn seq_compound(&mut self, mut ops: Vec<NfsArgOp>) -> CompoundRes {
        ops.insert(0, self.sequence_op());
        self.compound(ops).await
    }

    /// EXCHANGE_ID + CREATE_SESSION, as the Linux client mounts.
    pub async fn establish(&mut self, owner: &[u8]) {
        let res = self.compound(vec![exchange_id(owner, [7; 8])]).await;
        let NfsResOp::ExchangeId(Ok(ex)) = &res.results[0] else {
            panic!("EXCHANGE_ID failed: {res:?}");
        };
        self.clientid = ex.clientid;
        let res = self
            .compound(vec![create_session(ex.clientid, ex.sequenceid)])
            .await;
        let NfsResOp::CreateSession(Ok(cs)) = &res.results[0] else {
            panic!("CREATE_SESSION failed: {res:?}");
        };
        self.session = Some(cs.sessionid);
        self.seq = 1;
    }
}

pub fn decode_reply(raw: Vec<u8>) -> Reply {
    let mut d = Decoder::new(&raw);
    let xid = d.u32().unwrap();
    assert_eq!(d.u32().unwrap(), 1, "REPLY");
    assert_eq!(d.u32().unwrap(), 0, "MSG_ACCEPTED");
    let _flavor = d.u32().unwrap();
    d.opaque(400, "verf").unwrap();
    let accept_stat = d.u32().unwrap();
    // NULL replies carry no results.
    let res = if accept_stat == 0 && !d.is_empty() {
        let res = CompoundRes::decode(&mut d).unwrap();
        d.finish().unwrap();
        Some(res)
    } else {
        None
    };
    Reply {
        xid,
        accept_stat,
        res,
        raw,
    }
}

pub fn exchange_id(owner: &[u8], verifier: [u8; 8]) -> NfsArgOp {
    NfsArgOp::ExchangeId(ExchangeIdArgs {
        clientowner: ClientOwner {
            verifier,
            ownerid: Opaque(owner.to_vec()),
        },
        flags: 0,
        state_protect: StateProtectArgs::None,
        client_impl_id: None,
    })
}

pub fn channel(maxrequests: u32) -> ChannelAttrs {
    ChannelAttrs {
        headerpadsize: 0,
        maxrequestsize: 1_049_620,
        maxresponsesize: 1_049_480,
        maxresponsesize_cached: 7584,
        // Linux asks for 8; some tests send longer compounds.
        maxoperations: 16,
        maxrequests,
        rdma_ird: None,
    }
}

pub fn create_session(clientid: u64, sequence: u32) -> NfsArgOp {
    NfsArgOp::CreateSession(CreateSessionArgs {
        clientid,
        sequence,
        flags: CREATE_SESSION4_FLAG_PERSIST | CREATE_SESSION4_FLAG_CONN_BACK_CHAN,
        fore_chan_attrs: channel(64),
        back_chan_attrs: ChannelAttrs {
            headerpadsize: 0,
            maxrequestsize: 4096,
            maxresponsesize: 4096,
            maxresponsesize_cached: 0,
            maxoperations: 2,
            maxrequests: 16,
            rdma_ird: None,
        },
        cb_program: 0x4000_0000,
        sec_parms: vec![CallbackSecParms::None],
    })
}
