#!/usr/bin/env node
// One Socket.IO 4.8 node with the Redis adapter (the fan-out peer Switchboard is compared with).
//
//   node server.js PORT REDIS_URL
//
// Protocol (websocket transport only, default namespace "/"):
//   emit("join", room, ack?)            -> socket joins `room`; ack() once joined
//   emit("pub", {room, payload}, ack?)  -> io.to(room).emit("ev", payload): delivered to this
//                                          node's members directly and to the other nodes'
//                                          members through Redis pub/sub (the adapter)
// Prints "listening PORT" on stdout once the Redis clients are connected and the port is bound.
"use strict";

const http = require("node:http");
const { Server } = require("socket.io");
const { createAdapter } = require("@socket.io/redis-adapter");
const { createClient } = require("redis");

const port = Number(process.argv[2]);
const redisUrl = process.argv[3] || "redis://127.0.0.1:6379";
if (!Number.isInteger(port) || port <= 0) {
  console.error("usage: node server.js PORT REDIS_URL");
  process.exit(2);
}

async function main() {
  const pubClient = createClient({ url: redisUrl });
  const subClient = pubClient.duplicate();
  for (const c of [pubClient, subClient]) c.on("error", (e) => console.error("redis:", e.message));
  await Promise.all([pubClient.connect(), subClient.connect()]);

  const httpServer = http.createServer((_req, res) => {
    res.writeHead(404);
    res.end();
  });
  const io = new Server(httpServer, {
    transports: ["websocket"], // no HTTP long-polling, no upgrade dance
    serveClient: false,
    perMessageDeflate: false,
    adapter: createAdapter(pubClient, subClient),
  });

  io.on("connection", (socket) => {
    socket.on("join", (room, ack) => {
      socket.join(String(room));
      if (typeof ack === "function") ack();
    });
    socket.on("pub", (msg, ack) => {
      if (msg && msg.room != null) io.to(String(msg.room)).emit("ev", msg.payload);
      if (typeof ack === "function") ack();
    });
  });

  httpServer.listen(port, "127.0.0.1", () => {
    process.stdout.write(`listening ${port}\n`);
  });

  const stop = () => {
    io.close();
    Promise.allSettled([pubClient.quit(), subClient.quit()]).finally(() => process.exit(0));
    setTimeout(() => process.exit(0), 1000).unref();
  };
  process.on("SIGINT", stop);
  process.on("SIGTERM", stop);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
