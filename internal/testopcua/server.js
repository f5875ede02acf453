// A node-opcua server for the inputs.opcua tests: one variable of every
// built-in type the plugin maps, each under a NodeId of another string
// form, a value that changes, writable nodes, a read-only node, username
// authentication and small operation limits (so that reads must be
// batched). Started by the Go tests; prints "READY <port>" once it serves.
//
// Environment: OPCUA_PORT (required), OPCUA_USER, OPCUA_PASSWORD,
// NODE_OPCUA (the node-opcua module directory), OPCUA_PKI (a directory for
// the server's own certificate), OPCUA_NODES (extra UInt32 nodes for the
// benchmark: ns=1;s=N0..N<n-1>, each changing every 100 ms), OPCUA_LIMIT
// (the operation limits, default 7).
"use strict";
const opcua = require(process.env.NODE_OPCUA || "node-opcua");
const { OPCUAServer, Variant, DataType, StatusCodes, MessageSecurityMode, SecurityPolicy, OPCUACertificateManager } = opcua;

const port = parseInt(process.env.OPCUA_PORT, 10);
const user = process.env.OPCUA_USER || "operator";
const password = process.env.OPCUA_PASSWORD || "secret";
const pki = process.env.OPCUA_PKI || require("os").tmpdir() + "/edgepipe-opcua-pki";
const extra = parseInt(process.env.OPCUA_NODES || "0", 10);
const limit = parseInt(process.env.OPCUA_LIMIT || "7", 10); // nodes per Read, Write and CreateMonitoredItems

async function main() {
  const serverCertificateManager = new OPCUACertificateManager({
    automaticallyAcceptUnknownCertificate: true,
    rootFolder: pki + "/server",
  });
  const userCertificateManager = new OPCUACertificateManager({
    automaticallyAcceptUnknownCertificate: true,
    rootFolder: pki + "/user",
  });
  const server = new OPCUAServer({
    port,
    hostname: "127.0.0.1",
    resourcePath: "/edgepipe",
    serverCertificateManager,
    userCertificateManager,
    securityPolicies: [SecurityPolicy.None, SecurityPolicy.Basic256Sha256],
    securityModes: [MessageSecurityMode.None, MessageSecurityMode.Sign, MessageSecurityMode.SignAndEncrypt],
    allowAnonymous: true,
    userManager: { isValidUser: (u, p) => u === user && p === password },
    serverCapabilities: {
      maxSessions: 100,
      operationLimits: { maxNodesPerRead: limit, maxNodesPerWrite: limit, maxMonitoredItemsPerCall: limit },
    },
  });
  await server.initialize();
  const addressSpace = server.engine.addressSpace;
  const ns = addressSpace.getOwnNamespace();
  const folder = ns.addFolder(addressSpace.rootFolder.objects, { browseName: "Edgepipe" });

  const add = (nodeId, dataType, value, access) => {
    const v = ns.addVariable({
      organizedBy: folder,
      browseName: nodeId.replace(/[^A-Za-z0-9]/g, "_"),
      nodeId,
      dataType,
      accessLevel: access || "CurrentRead | CurrentWrite",
      userAccessLevel: access || "CurrentRead | CurrentWrite",
      minimumSamplingInterval: 50,
    });
    v.setValueFromSource(new Variant({ dataType: DataType[dataType], arrayType: opcua.VariantArrayType.Scalar, value }));
    return v;
  };

  // Every built-in type the plugin maps, with values at the edges.
  add("s=Boolean", "Boolean", true);
  add("s=SByte", "SByte", -128);
  add("s=Byte", "Byte", 255);
  add("s=Int16", "Int16", -32768);
  add("s=UInt16", "UInt16", 65535);
  add("s=Int32", "Int32", -2147483648);
  add("s=UInt32", "UInt32", 4294967295);
  add("s=Int64", "Int64", [0xfefdfcfb, 0xfaf9f8f8]); // -0x0102030405060708
  add("s=UInt64", "UInt64", [0xfedcba98, 0x76543210]);
  add("s=Float", "Float", -1.5);
  add("s=Double", "Double", -Math.PI);
  add("s=String", "String", "Grüße, OPC UA");
  add("s=DateTime", "DateTime", new Date(Date.UTC(2024, 1, 29, 12, 34, 56, 789)));
  add("s=ByteString", "ByteString", Buffer.from([0, 1, 2, 0xfe, 0xff]));
  add("s=Guid", "Guid", "72962B91-FA75-4AE6-8D28-B404DC7DAF63");
  add("s=XmlElement", "XmlElement", "<a>1</a>");
  add("s=NodeId", "NodeId", opcua.resolveNodeId("ns=1;s=Boolean"));
  add("s=StatusCode", "StatusCode", StatusCodes.BadOutOfRange);
  add("s=QualifiedName", "QualifiedName", new opcua.QualifiedName({ namespaceIndex: 1, name: "Speed" }));
  add("s=LocalizedText", "LocalizedText", new opcua.LocalizedText({ locale: "en", text: "Hello" }));

  // NodeIds in the other forms.
  add("i=1001", "Int32", 1001);
  add("g=1B2C3D4E-0000-4000-8000-00000000ABCD", "Double", 2.5);
  add("b=AQIDBA==", "UInt16", 1234);

  // A namespace of its own, for NodeIds given by namespace URI (nsu=).
  const ns2 = addressSpace.registerNamespace("urn:edgepipe:test");
  const temp = ns2.addVariable({ organizedBy: folder, browseName: "Temperature", nodeId: "s=Temperature", dataType: "Double" });
  temp.setValueFromSource(new Variant({ dataType: DataType.Double, value: 21.5 }));

  // A value that changes every 100 ms.
  const counter = add("s=Counter", "UInt32", 0, "CurrentRead");
  let n = 0;
  setInterval(() => counter.setValueFromSource(new Variant({ dataType: DataType.UInt32, value: ++n })), 100);

  // Writable nodes and one the server refuses to write.
  add("s=Setpoint", "Double", 20.5);
  add("s=Mode", "Int16", 1);
  add("s=Enabled", "Boolean", false);
  add("s=Label", "String", "idle");
  add("s=Small", "Byte", 7);
  add("s=ReadOnly", "Double", 1.25, "CurrentRead");

  // A node whose value is not good: uncertain, with a status name.
  const unc = add("s=Uncertain", "Double", 3.0);
  unc.setValueFromSource(new Variant({ dataType: DataType.Double, value: 3.0 }), StatusCodes.UncertainLastUsableValue);

  // Values edgepipe has no kind for: arrays (one and two dimensions) and
  // a structure (ns=0;i=2256, the server's ServerStatus, is one already).
  const arr = (nodeId, dataType, value, dims) => {
    const v = ns.addVariable({ organizedBy: folder, browseName: nodeId.slice(2), nodeId, dataType, valueRank: dims ? dims.length : 1,
      arrayDimensions: dims || [value.length], accessLevel: "CurrentRead | CurrentWrite", userAccessLevel: "CurrentRead | CurrentWrite" });
    v.setValueFromSource(new Variant({ dataType: DataType[dataType], arrayType: dims ? opcua.VariantArrayType.Matrix : opcua.VariantArrayType.Array,
      value, dimensions: dims }));
  };
  arr("s=DoubleArray", "Double", [1.5, 2.5, 3.5]);
  arr("s=StringArray", "String", ["a", "b"]);
  arr("s=Int32Matrix", "Int32", [1, 2, 3, 4, 5, 6], [2, 3]);
  // A writable node that has no value yet: its type is only in its DataType.
  ns.addVariable({ organizedBy: folder, browseName: "Empty", nodeId: "s=Empty", dataType: "Double",
    accessLevel: "CurrentRead | CurrentWrite", userAccessLevel: "CurrentRead | CurrentWrite" });

  const bench = [];
  for (let i = 0; i < extra; i++) bench.push(add("s=N" + i, "UInt32", 0, "CurrentRead"));
  if (extra > 0) {
    let k = 0;
    setInterval(() => {
      k++;
      for (const v of bench) v.setValueFromSource(new Variant({ dataType: DataType.UInt32, value: k }));
    }, 100);
  }

  await server.start();
  const fp = server.getCertificate ? require("crypto").createHash("sha256").update(server.getCertificate()).digest("hex") : "";
  process.stdout.write("READY " + port + " " + fp + "\n");
  const stop = async () => {
    await server.shutdown(0);
    process.exit(0);
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
  // The test holds our stdin open: when it dies (a timeout, a panic) the
  // pipe closes and the server goes too, instead of lingering.
  process.stdin.on("end", () => process.exit(0));
  process.stdin.resume();
}

main().catch((err) => {
  process.stderr.write("server failed: " + (err && err.stack ? err.stack : err) + "\n");
  process.exit(1);
});
