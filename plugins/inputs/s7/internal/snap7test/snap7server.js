// A snap7 S7 server (a software PLC) for the inputs.s7 tests.
//
// Usage: node snap7server.js [port]
// Listens on 127.0.0.1 (on a free port when none is given), registers DB1
// (1024 bytes), DB2 (64 bytes), DB3 (4096 bytes), M, I and Q (256 bytes
// each), then prints {"port":N} and takes one JSON command per line on
// stdin, answering one JSON line each:
//   {"op":"set","area":"DB","db":1,"start":0,"hex":"0102"} -> {"ok":true}
//   {"op":"get","area":"M","start":0,"size":4}             -> {"hex":"..."}
//   {"op":"count","area":"DB","db":2,"start":0}            -> a DWORD there
//       counts up every 5 ms (a changing value)
// The test finds node-snap7 through NODE_PATH.
'use strict';
const snap7 = require('node-snap7');
const readline = require('readline');

const srv = new snap7.S7Server();
const areas = {
  DB: srv.srvAreaDB, M: srv.srvAreaMK, I: srv.srvAreaPE, Q: srv.srvAreaPA,
};
const sizes = [['DB', 1, 1024], ['DB', 2, 64], ['DB', 3, 4096], ['M', 0, 256], ['I', 0, 256], ['Q', 0, 256]];
for (const [a, db, size] of sizes) {
  if (!call('RegisterArea', a, db, Buffer.alloc(size))) {
    console.error('RegisterArea', a, db, srv.ErrorText(srv.LastError()));
    process.exit(2);
  }
}

function start(port) {
  srv.SetParam(srv.LocalPort, port);
  return srv.StartTo('127.0.0.1') !== false;
}

let port = Number(process.argv[2] || 0);
if (port) {
  if (!start(port)) {
    console.error('cannot listen on', port, srv.ErrorText(srv.LastError()));
    process.exit(3);
  }
} else {
  for (let i = 0; ; i++) {
    // Below Linux's ephemeral range (32768-60999), so that no client
    // socket takes the port while the server restarts.
    port = 20000 + Math.floor(Math.random() * 12000);
    if (start(port)) break;
    if (i > 50) {
      console.error('no free port');
      process.exit(3);
    }
  }
}

// call runs an area function of the server: node-snap7 takes the DB
// number only for DBs.
function call(fn, a, db, ...rest) {
  return a === 'DB' ? srv[fn](areas[a], db, ...rest) : srv[fn](areas[a], ...rest);
}

// modify changes an area by get-modify-set. GetArea and SetArea each take
// the area's lock (LockArea around them deadlocks), so a client's write
// between the two is undone: keep the counter in an area clients do not
// write (the tests use DB2).
function modify(a, db, fn) {
  const buf = call('GetArea', a, db);
  fn(buf);
  call('SetArea', a, db, buf);
}

const rl = readline.createInterface({ input: process.stdin });
rl.on('line', (line) => {
  let reply;
  try {
    const c = JSON.parse(line);
    const db = c.db || 0;
    switch (c.op) {
      case 'set':
        modify(c.area, db, (buf) => Buffer.from(c.hex, 'hex').copy(buf, c.start));
        reply = { ok: true };
        break;
      case 'get': {
        const buf = call('GetArea', c.area, db);
        reply = { hex: buf.subarray(c.start, c.start + c.size).toString('hex') };
        break;
      }
      case 'count':
        setInterval(() => modify(c.area, db, (buf) => buf.writeUInt32BE((buf.readUInt32BE(c.start) + 1) >>> 0, c.start)), 5);
        reply = { ok: true };
        break;
      default:
        reply = { error: 'unknown op ' + c.op };
    }
  } catch (e) {
    reply = { error: String(e) };
  }
  process.stdout.write(JSON.stringify(reply) + '\n');
});
rl.on('close', () => { srv.Stop(); process.exit(0); });
process.stdout.write(JSON.stringify({ port }) + '\n');
