import { useState } from "react";
import { AiPanel } from "./AiPanel";
import { RunPanel } from "./RunPanel";
import { startProject, useConnection } from "./switchboard";

const newId = (prefix: string) => `${prefix}-${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;

// ?session=ID and ?project=ID pick them (a reload keeps them: they are written back)
const query = new URLSearchParams(location.search);
const sessionId = query.get("session") ?? newId("s");

function remember(project?: string) {
  const q = new URLSearchParams({ session: sessionId, ...(project ? { project } : {}) });
  history.replaceState(null, "", `?${q}`);
}

export function App() {
  const connection = useConnection();
  const [projectId, setProjectId] = useState(query.get("project"));
  const [error, setError] = useState<string>();
  remember(projectId ?? undefined);

  const onStart = () => {
    const id = newId("video");
    setError(undefined);
    startProject(id).then(() => setProjectId(id), (e) => setError(String(e.message ?? e)));
  };
  return (
    <main>
      <h1>Switchboard example</h1>
      <p className="muted">
        connection: <span data-testid="connection">{connection}</span>
      </p>
      <AiPanel sessionId={sessionId} />
      <section>
        <h2>Project</h2>
        <button data-testid="start-project" onClick={onStart}>Start a project</button>
        {error && <p className="error" data-testid="error">{error}</p>}
        {projectId && <RunPanel runId={projectId} />}
      </section>
    </main>
  );
}
