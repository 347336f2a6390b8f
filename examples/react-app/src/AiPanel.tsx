// (a) An AI-style job: the backend publishes ai_start, ai_progress and ai_complete on
// session:{id}; this panel shows the latest generation live.
import { useTopic } from "@switchboard/client/react";
import { useState } from "react";
import { client, generate } from "./switchboard";

interface AiData {
  prompt?: string;
  progress?: number;
  message?: string;
  result?: string;
}

export function AiPanel({ sessionId }: { sessionId: string }) {
  const [prompt, setPrompt] = useState("a haiku about switchboards");
  const [error, setError] = useState<string>();
  // since: 0 replays what the topic kept (a reload shows the last generation again)
  const topic = useTopic<AiData>(client, `session:${sessionId}`, { since: 0, limit: 200 });
  const start = topic.events.findLastIndex((e) => e.event == "ai_start");
  const current = start < 0 ? [] : topic.events.slice(start);
  const steps = current.filter((e) => e.event == "ai_progress");
  const done = current.find((e) => e.event == "ai_complete");
  const progress = done ? 1 : (steps.at(-1)?.data.progress ?? 0);

  const onGenerate = () => {
    setError(undefined);
    generate(sessionId, prompt).catch((e) => setError(String(e.message ?? e)));
  };
  return (
    <section>
      <h2>AI session <code data-testid="session-id">{sessionId}</code></h2>
      <input value={prompt} onChange={(e) => setPrompt(e.target.value)} aria-label="prompt" size={40} />{" "}
      <button data-testid="generate" onClick={onGenerate}>Generate</button>
      {(error || topic.error) && <p className="error" data-testid="error">{error ?? topic.error?.message}</p>}
      {start >= 0 && (
        <>
          <progress data-testid="ai-progress" max={1} value={progress} data-value={progress.toFixed(2)} />
          <ol>
            {steps.map((e) => (
              <li key={e.seq} data-testid="ai-message">{e.data.message}</li>
            ))}
          </ol>
          {done && <p className="result" data-testid="ai-result">{done.data.result}</p>}
        </>
      )}
    </section>
  );
}
