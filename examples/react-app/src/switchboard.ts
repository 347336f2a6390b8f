// One Switchboard client for the page, and the calls to the app's own backend.
// Both are reached on this page's origin: Vite's proxy forwards /api and /ws to
// Switchboard and /backend to the FastAPI app (vite.config.ts).
import { Switchboard, type ConnectionState } from "@switchboard/client";
import { useEffect, useState } from "react";

async function backend<T>(path: string, body?: unknown): Promise<T> {
  const res = await fetch(`/backend${path}`, {
    method: "POST",
    headers: body === undefined ? {} : { "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const json = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error(`POST /backend${path}: ${res.status} ${JSON.stringify(json.detail ?? json)}`);
  return json as T;
}

export const client = new Switchboard({
  url: `${location.protocol == "https:" ? "wss" : "ws"}://${location.host}/ws`,
  // asked before the first connection, and again when the server refuses the token
  getToken: () => backend<{ token: string }>("/token").then((r) => r.token),
});
client.connect();

export const generate = (sessionId: string, prompt: string) => backend<{ topic: string }>("/generate", { session_id: sessionId, prompt });
export const startProject = (id: string) => backend<{ id: string }>(`/projects/${encodeURIComponent(id)}`);

/** The connection's state, re-rendered as it changes. */
export function useConnection(): ConnectionState {
  const [state, setState] = useState(client.state);
  useEffect(() => client.on("state", (s) => setState(s)), []);
  return state;
}

/** An artifact as an object URL (artifacts need the token, which an <img> cannot send). */
export function useArtifactUrl(path: string): string | undefined {
  const [url, setUrl] = useState<string>();
  useEffect(() => {
    let objectUrl: string | undefined;
    let stopped = false;
    fetch(client.httpUrl + path, { headers: { authorization: `Bearer ${client.token}` } })
      .then((r) => (r.ok ? r.blob() : Promise.reject(new Error(`HTTP ${r.status}`))))
      .then((blob) => {
        if (!stopped) setUrl((objectUrl = URL.createObjectURL(blob)));
      })
      .catch(() => {});
    return () => {
      stopped = true;
      if (objectUrl) URL.revokeObjectURL(objectUrl);
    };
  }, [path]);
  return url;
}
