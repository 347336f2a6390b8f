import react from "@vitejs/plugin-react";
import { defineConfig, loadEnv, type ProxyOptions } from "vite";

// The page talks only to its own origin; this proxy forwards
//   /api, /ws  -> Switchboard (VITE_SWITCHBOARD_URL), with the Host rewritten to the
//                 server's (it answers only Host names it knows); the browser's Origin
//                 is passed on, so start Switchboard with --allowed-origins <this page>
//   /backend/* -> the FastAPI app (VITE_BACKEND_URL), without the /backend prefix
// `vite preview` uses the same proxy (preview.proxy defaults to server.proxy).
export default defineConfig(({ mode }) => {
  const env = loadEnv(mode, ".", "VITE_");
  const switchboard = env.VITE_SWITCHBOARD_URL || "http://127.0.0.1:3000";
  const backend = env.VITE_BACKEND_URL || "http://127.0.0.1:8000";
  const proxy: Record<string, ProxyOptions> = {
    "/api": { target: switchboard, changeOrigin: true },
    "/ws": { target: switchboard, changeOrigin: true, ws: true },
    "/backend": { target: backend, changeOrigin: true, rewrite: (path) => path.replace(/^\/backend/, "") },
  };
  return {
    plugins: [react()],
    // the client is linked from ../../clients/js, which has its own react for its
    // tests: one copy of react for the whole page
    resolve: { dedupe: ["react", "react-dom"] },
    server: { host: "127.0.0.1", port: 5173, strictPort: true, proxy },
    preview: { host: "127.0.0.1", port: 4173, strictPort: true, proxy },
  };
});
