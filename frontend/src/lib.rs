//! The browser entry point: hydrates the server-rendered page into the live app.
// the views nest deeply in release builds (no `erase_components` there)
#![recursion_limit = "256"]

#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    // hydrate_lazy: some routes are loaded on first use (lazy routes, a split build)
    leptos::mount::hydrate_lazy(app::App);
}
