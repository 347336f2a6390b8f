// A Node service that uses the TypeScript client: it starts a pipeline on the server
// (or takes a run that exists), follows the run live with watchRun (its snapshot,
// then every event of workflow:{id}), and publishes what it sees on a topic of its
// own, which any browser subscribed to it gets at once.
//
//   SWITCHBOARD_URL=http://127.0.0.1:3000 SWITCHBOARD_TOKEN=... \
//     node --experimental-websocket examples/node-service.mjs [render-demo | --follow RUN_ID]
//
// Node 22 and later have a WebSocket: drop the flag there. The token:
// switchboard token create --sub node-service --run --pub-topics 'session:*' --sub-topics 'workflow:*'
//
// In your own service, `npm install @switchboard/client` and import from
// "@switchboard/client"; here it is the repository's build (clients/js: npm ci && npx tsc -p tsconfig.json).
import { Switchboard, watchRun } from "../clients/js/dist/index.js";

const url = process.env.SWITCHBOARD_URL ?? "http://127.0.0.1:3000";
const topic = process.env.SERVICE_TOPIC ?? "session:node-service";
const [arg = "render-demo", followId] = process.argv.slice(2);
const FINISHED = ["completed", "failed", "cancelled"];

const client = new Switchboard({ url, token: process.env.SWITCHBOARD_TOKEN });
client.on("state", (state, info) => console.log(`[switchboard] ${state}${info.code ? ` (close ${info.code} ${info.reason})` : ""}`));
client.connect();

const publish = (event, data) =>
  client.publish(topic, event, data).catch((e) => console.warn(`publish ${event} on ${topic}: ${e.code}: ${e.message}`));

let id = followId;
if (arg != "--follow") {
  const run = await client.post("/api/v1/workflows", { pipeline: arg });
  id = run.id;
  console.log(`started ${arg} as run ${id}`);
}
await publish("job_started", { run: id });

const final = await new Promise((resolve) => {
  const seen = new Map(); // stage id -> the status printed last
  let decile = -1;
  const stop = watchRun(client, id, {
    onChange: (run, ev) => {
      for (const st of run.stages) {
        if (seen.get(st.id) == st.status) continue;
        seen.set(st.id, st.status);
        console.log(`${run.id}: stage ${st.id} ${st.status}${st.error ? ` (${st.error})` : ""}`);
        publish("job_stage", { run: run.id, stage: st.id, status: st.status });
      }
      if (ev?.event == "artifact") console.log(`${run.id}: artifact ${ev.data.name} (${ev.data.kind}, ${ev.data.bytes} bytes)`);
      if (Math.floor(run.progress * 10) > decile) {
        decile = Math.floor(run.progress * 10);
        publish("job_progress", { run: run.id, progress: run.progress });
      }
      if (FINISHED.includes(run.state)) {
        stop();
        resolve(run);
      }
    },
    onError: (e) => {
      console.warn(`${id}: ${e.code}: ${e.message}`);
      if (e.status < 500) resolve(stop()); // 404, 403: nothing to follow (5xx are retried)
    },
  });
});
if (!final) {
  client.disconnect();
  process.exit(2);
}

const seconds = final.started_at && final.finished_at ? (final.finished_at - final.started_at) / 1000 : null;
console.log(`${final.id}: ${final.state}${seconds != null ? ` in ${seconds.toFixed(1)} s` : ""}`);
await publish("job_finished", { run: final.id, state: final.state, seconds });
client.disconnect();
process.exitCode = final.state == "completed" ? 0 : 1;
