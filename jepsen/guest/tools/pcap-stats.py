#!/usr/bin/env python3
"""pcap-stats.py CAPTURE PORT — per-operation counts and every non-OK status in an NFSv4 capture.

Reads a capture made with HARNESS_PCAP=1 (run-guest.sh / run-suites.sh) through tshark and
prints: COMPOUND shapes, op counts, and each (op, status) that was not NFS4_OK with its count
and the first XIDs, so a failure can be looked up with
  tshark -r CAPTURE -d tcp.port==PORT,rpc -Y 'rpc.xid == 0x...' -O nfs
Needs tshark (apt-get install tshark).
"""
import collections, subprocess, sys

STATUS = {0: "OK", 1: "PERM", 2: "NOENT", 5: "IO", 6: "NXIO", 13: "ACCESS", 17: "EXIST", 18: "XDEV",
          20: "NOTDIR", 21: "ISDIR", 22: "INVAL", 27: "FBIG", 28: "NOSPC", 30: "ROFS", 31: "MLINK",
          63: "NAMETOOLONG", 66: "NOTEMPTY", 69: "DQUOT", 70: "STALE", 10001: "BADHANDLE",
          10003: "BAD_COOKIE", 10004: "NOTSUPP", 10005: "TOOSMALL", 10006: "SERVERFAULT",
          10007: "BADTYPE", 10008: "DELAY", 10009: "SAME", 10010: "DENIED", 10011: "EXPIRED",
          10012: "LOCKED", 10013: "GRACE", 10014: "FHEXPIRED", 10015: "SHARE_DENIED",
          10016: "WRONGSEC", 10017: "CLID_INUSE", 10018: "RESOURCE", 10019: "MOVED",
          10020: "NOFILEHANDLE", 10021: "MINOR_VERS_MISMATCH", 10022: "STALE_CLIENTID",
          10023: "STALE_STATEID", 10024: "OLD_STATEID", 10025: "BAD_STATEID", 10026: "BAD_SEQID",
          10027: "NOT_SAME", 10028: "LOCK_RANGE", 10029: "SYMLINK", 10030: "RESTOREFH",
          10031: "LEASE_MOVED", 10032: "ATTRNOTSUPP", 10033: "NO_GRACE", 10034: "RECLAIM_BAD",
          10035: "RECLAIM_CONFLICT", 10036: "BADXDR", 10037: "LOCKS_HELD", 10038: "OPENMODE",
          10039: "BADOWNER", 10040: "BADCHAR", 10041: "BADNAME", 10042: "BAD_RANGE",
          10043: "LOCK_NOTSUPP", 10044: "OP_ILLEGAL", 10045: "DEADLOCK", 10046: "FILE_OPEN",
          10047: "ADMIN_REVOKED", 10048: "CB_PATH_DOWN", 10052: "BADSESSION", 10053: "BADSLOT",
          10054: "COMPLETE_ALREADY", 10055: "CONN_NOT_BOUND_TO_SESSION", 10057: "DELEG_ALREADY_WANTED",
          10062: "SEQ_MISORDERED", 10063: "SEQUENCE_POS", 10064: "REQ_TOO_BIG", 10065: "REP_TOO_BIG",
          10066: "REP_TOO_BIG_TO_CACHE", 10067: "RETRY_UNCACHED_REP", 10068: "UNSAFE_COMPOUND",
          10069: "TOO_MANY_OPS", 10070: "OP_NOT_IN_SESSION", 10071: "HASH_ALG_UNSUPP",
          10073: "CLIENTID_BUSY", 10076: "SEQ_FALSE_RETRY", 10077: "BAD_HIGH_SLOT",
          10078: "DEADSESSION", 10079: "ENCR_ALG_UNSUPP", 10081: "NOMATCHING_LAYOUT",
          10085: "WRONG_TYPE", 10086: "DIRDELEG_UNAVAIL", 10087: "REJECT_DELEG",
          10088: "RETURNCONFLICT", 10089: "DELEG_REVOKED"}
OPS = {3: "ACCESS", 4: "CLOSE", 5: "COMMIT", 6: "CREATE", 7: "DELEGPURGE", 8: "DELEGRETURN",
       9: "GETATTR", 10: "GETFH", 11: "LINK", 12: "LOCK", 13: "LOCKT", 14: "LOCKU", 15: "LOOKUP",
       16: "LOOKUPP", 17: "NVERIFY", 18: "OPEN", 19: "OPENATTR", 20: "OPEN_CONFIRM",
       21: "OPEN_DOWNGRADE", 22: "PUTFH", 23: "PUTPUBFH", 24: "PUTROOTFH", 25: "READ",
       26: "READDIR", 27: "READLINK", 28: "REMOVE", 29: "RENAME", 30: "RENEW", 31: "RESTOREFH",
       32: "SAVEFH", 33: "SECINFO", 34: "SETATTR", 35: "SETCLIENTID", 36: "SETCLIENTID_CONFIRM",
       37: "VERIFY", 38: "WRITE", 39: "RELEASE_LOCKOWNER", 40: "BACKCHANNEL_CTL",
       41: "BIND_CONN_TO_SESSION", 42: "EXCHANGE_ID", 43: "CREATE_SESSION", 44: "DESTROY_SESSION",
       45: "FREE_STATEID", 46: "GET_DIR_DELEGATION", 47: "GETDEVICEINFO", 48: "GETDEVICELIST",
       49: "LAYOUTCOMMIT", 50: "LAYOUTGET", 51: "LAYOUTRETURN", 52: "SECINFO_NO_NAME",
       53: "SEQUENCE", 54: "SET_SSV", 55: "TEST_STATEID", 56: "WANT_DELEGATION",
       57: "DESTROY_CLIENTID", 58: "RECLAIM_COMPLETE"}

def ints(s):
    return [int(x, 0) for x in s.split(",") if x != ""]

def main():
    cap, port = sys.argv[1], sys.argv[2]
    out = subprocess.run(
        ["tshark", "-r", cap, "-d", f"tcp.port=={port},rpc", "-Y", "rpc.msgtyp==1",
         "-T", "fields", "-E", "separator=|", "-E", "occurrence=a", "-E", "aggregator=,",
         "-e", "rpc.xid", "-e", "nfs.opcode", "-e", "nfs.nfsstat4", "-e", "rpc.state_accept"],
        capture_output=True, text=True, check=True).stdout
    shapes, ops, bad, rpc_bad = collections.Counter(), collections.Counter(), collections.Counter(), collections.Counter()
    examples = collections.defaultdict(list)
    replies = 0
    for line in out.splitlines():
        xid, opl, stl, acc = (line.split("|") + ["", "", ""])[:4]
        replies += 1
        if acc not in ("", "0"):
            rpc_bad[acc] += 1
        o, st = ints(opl), ints(stl)
        if not o:
            continue
        shapes[",".join(OPS.get(x, str(x)) for x in o)] += 1
        for i, op in enumerate(o):
            name = OPS.get(op, str(op))
            ops[name] += 1
            s = st[i + 1] if i + 1 < len(st) else None
            if s not in (0, None):
                key = (name, STATUS.get(s, str(s)))
                bad[key] += 1
                if len(examples[key]) < 4:
                    examples[key].append(xid)
    print(f"{replies} RPC replies")
    for k, v in rpc_bad.items():
        print(f"  RPC accept_stat {k}: {v}")
    print("COMPOUND shapes:")
    for k, v in shapes.most_common():
        print(f"  {v:7d}  {k}")
    print("ops:", ", ".join(f"{k} {v}" for k, v in ops.most_common()))
    print("non-OK op results:" if bad else "non-OK op results: none")
    for (op, s), v in bad.most_common():
        print(f"  {op:16s} {s:22s} {v:6d}   e.g. xid {' '.join(examples[(op, s)])}")

if __name__ == "__main__":
    main()
