#!/usr/bin/env python3
"""The SQLite key of mirror_transactions (schema 8), measured: the same rows upserted into the
version-7 table (rowid, `id` key, four indexes) and into the version-8 one (`WITHOUT ROWID`,
key `(user_id, id)`), one after the other, 5,000 rows per transaction, WAL,
synchronous=NORMAL, as the mirror writes a backfill; then the time to count one user's rows
(the kept figures). Python's sqlite3 adds its own cost to both sides alike: compare the ratio.

    python3 bench/sqlite_key.py [ROWS] [SCHEMA ...]     # defaults: 1000000 v8_user_key v7_id_key
"""
import sqlite3, uuid, time, os, random, sys, tempfile
N=int(sys.argv[1]) if len(sys.argv) > 1 else 1000000; USERS=200
raw='{"id":"%s","amount":{"value":-1234,"currency":"GBP"},"categoryId":"std:4b0255f0-0309-4509-9e05-4b4e386f9b0d","date":"2024-05-01T10:00:00.000Z","dateModified":"2024-05-01T10:00:00.000Z","longDescription":"CARD PAYMENT TO SAINSBURYS S/MKTS CAMDEN","shortDescription":"Sainsbury\'s","notes":"","status":"posted","accountId":"%s","providerId":"moneyhub-mock-04fdeee7-128f81"}'
schemas={
'v7_id_key':"""CREATE TABLE t (id TEXT PRIMARY KEY, user_id TEXT NOT NULL, account_id TEXT, connection_id TEXT, date_ms INTEGER NOT NULL, modified_ms INTEGER NOT NULL, status TEXT NOT NULL, deleted INTEGER NOT NULL DEFAULT 0, raw TEXT NOT NULL, updated_ms INTEGER NOT NULL);
CREATE INDEX tu ON t (user_id, id); CREATE INDEX ta ON t (account_id, date_ms); CREATE INDEX tc ON t (connection_id); CREATE INDEX tt ON t (user_id) WHERE deleted <> 0;""",
'v8_user_key':"""CREATE TABLE t (id TEXT NOT NULL, user_id TEXT NOT NULL, account_id TEXT, connection_id TEXT, date_ms INTEGER NOT NULL, modified_ms INTEGER NOT NULL, status TEXT NOT NULL, deleted INTEGER NOT NULL DEFAULT 0, raw TEXT NOT NULL, updated_ms INTEGER NOT NULL, PRIMARY KEY (user_id, id)) WITHOUT ROWID;
CREATE INDEX ta ON t (account_id, date_ms); CREATE INDEX tc ON t (connection_id); CREATE INDEX tt ON t (user_id) WHERE deleted <> 0;""",
'fewer_indexes':"""CREATE TABLE t (id TEXT PRIMARY KEY, user_id TEXT NOT NULL, account_id TEXT, connection_id TEXT, date_ms INTEGER NOT NULL, modified_ms INTEGER NOT NULL, status TEXT NOT NULL, deleted INTEGER NOT NULL DEFAULT 0, raw TEXT NOT NULL, updated_ms INTEGER NOT NULL);
CREATE INDEX ta ON t (user_id, account_id, date_ms); CREATE INDEX tt ON t (user_id) WHERE deleted <> 0;""",
}
rows_by_user=[]
for u in range(USERS):
    uid='%024x'%random.getrandbits(96); accs=[str(uuid.uuid4()) for _ in range(3)]; conn='bank:'+str(uuid.uuid4())
    rows=[]
    for i in range(N//USERS):
        tid=str(uuid.uuid4()); a=accs[i%3]
        rows.append((tid,uid,a,conn,1700000000000+i*1000,1700000000000,'posted',raw%(tid,a),1700000000000))
    rows_by_user.append(rows)
for name in (sys.argv[2:] or ['v8_user_key', 'v7_id_key']):
    path=os.path.join(tempfile.gettempdir(), 'sqlite-key-%s-%d.db' % (name, os.getpid()))
    for f in (path,path+'-wal',path+'-shm'):
        if os.path.exists(f): os.remove(f)
    c=sqlite3.connect(path, isolation_level=None); c.execute('PRAGMA journal_mode=WAL'); c.execute('PRAGMA synchronous=NORMAL')
    c.executescript(schemas[name])
    t=time.time(); n=0
    for rows in rows_by_user:
        for k in range(0,len(rows),5000):
            c.execute('BEGIN')
            c.executemany("INSERT INTO t (id,user_id,account_id,connection_id,date_ms,modified_ms,status,raw,updated_ms) VALUES (?,?,?,?,?,?,?,?,?) ON CONFLICT DO UPDATE SET raw=excluded.raw, modified_ms=excluded.modified_ms", rows[k:k+5000])
            c.execute('COMMIT'); n+=len(rows[k:k+5000])
    dt=time.time()-t
    print('%-15s %d rows in %.1f s: %.0f rows/s, %d MB'%(name,n,dt,n/dt,os.path.getsize(path)//2**20), flush=True)
    uids=[r[0][1] for r in rows_by_user[:50]]
    t=time.time()
    for u in uids: c.execute('SELECT COUNT(*) FROM t WHERE user_id=?',(u,)).fetchone()
    print('   count per user: %.2f ms'%((time.time()-t)/len(uids)*1000))
    c.close()
    for f in (path, path + '-wal', path + '-shm'):
        if os.path.exists(f):
            os.remove(f)
