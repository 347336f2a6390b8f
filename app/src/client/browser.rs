//! The few browser facilities the dashboard uses beyond the DOM: being told when the
//! tab is back online or in view, notifications, a file download, the clock. On the
//! server each does nothing.

/// Milliseconds since the Unix epoch (the protocol's timestamps).
pub fn now_ms() -> f64 {
    #[cfg(feature = "hydrate")]
    return js_sys::Date::now();
    #[cfg(not(feature = "hydrate"))]
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as f64)
        .unwrap_or(0.0)
}

/// Calls `f` whenever the browser comes back online or the tab becomes visible.
pub fn on_online_or_visible(f: fn()) {
    #[cfg(feature = "hydrate")]
    {
        use wasm_bindgen::closure::Closure;
        use wasm_bindgen::JsCast;
        let Some(window) = web_sys::window() else { return };
        let online = Closure::<dyn Fn()>::new(f);
        let _ = window.add_event_listener_with_callback("online", online.as_ref().unchecked_ref());
        // lives as long as the page
        online.forget();
        if let Some(document) = window.document() {
            let doc = document.clone();
            let visible = Closure::<dyn Fn()>::new(move || {
                if doc.visibility_state() == web_sys::VisibilityState::Visible {
                    f();
                }
            });
            let _ = document.add_event_listener_with_callback("visibilitychange", visible.as_ref().unchecked_ref());
            visible.forget();
        }
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = f;
}

/// Whether the user allowed browser notifications.
pub fn notifications_allowed() -> bool {
    #[cfg(feature = "hydrate")]
    return web_sys::Notification::permission() == web_sys::NotificationPermission::Granted;
    #[cfg(not(feature = "hydrate"))]
    false
}

/// Whether the browser can still be asked (neither allowed nor refused yet).
pub fn notifications_askable() -> bool {
    #[cfg(feature = "hydrate")]
    return web_sys::Notification::permission() == web_sys::NotificationPermission::Default;
    #[cfg(not(feature = "hydrate"))]
    false
}

/// Asks for permission to notify; `done` hears whether it was granted.
pub fn ask_notifications(done: impl FnOnce(bool) + 'static) {
    #[cfg(feature = "hydrate")]
    {
        let Ok(promise) = web_sys::Notification::request_permission() else { return done(false) };
        leptos::task::spawn_local(async move {
            let _ = wasm_bindgen_futures::JsFuture::from(promise).await;
            done(notifications_allowed());
        });
    }
    #[cfg(not(feature = "hydrate"))]
    done(false)
}

/// A system notification, when allowed.
pub fn notify(title: &str, body: &str) {
    #[cfg(feature = "hydrate")]
    if notifications_allowed() {
        let options = web_sys::NotificationOptions::new();
        options.set_body(body);
        let _ = web_sys::Notification::new_with_options(title, &options);
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = (title, body);
}

/// Offers `text` as a download named `filename`.
pub fn download_text(filename: &str, text: &str) {
    #[cfg(feature = "hydrate")]
    {
        use wasm_bindgen::JsCast;
        let parts = js_sys::Array::of1(&wasm_bindgen::JsValue::from_str(text));
        let options = web_sys::BlobPropertyBag::new();
        options.set_type("text/plain;charset=utf-8");
        let Ok(blob) = web_sys::Blob::new_with_str_sequence_and_options(&parts, &options) else { return };
        let Ok(url) = web_sys::Url::create_object_url_with_blob(&blob) else { return };
        let document = web_sys::window().and_then(|w| w.document());
        if let Some(a) = document
            .and_then(|d| d.create_element("a").ok())
            .and_then(|e| e.dyn_into::<web_sys::HtmlAnchorElement>().ok())
        {
            a.set_href(&url);
            a.set_download(filename);
            a.click();
        }
        let _ = web_sys::Url::revoke_object_url(&url);
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = (filename, text);
}

/// The page's origin (`http://host:port`), as a command run elsewhere must address it.
pub fn origin() -> String {
    #[cfg(feature = "hydrate")]
    return web_sys::window().and_then(|w| w.location().origin().ok()).unwrap_or_default();
    #[cfg(not(feature = "hydrate"))]
    String::new()
}

/// Puts `text` on the clipboard; `done` hears whether the browser allowed it.
pub fn copy_text(text: &str, done: impl FnOnce(bool) + 'static) {
    #[cfg(feature = "hydrate")]
    {
        let Some(window) = web_sys::window() else { return done(false) };
        let promise = window.navigator().clipboard().write_text(text);
        leptos::task::spawn_local(async move {
            done(wasm_bindgen_futures::JsFuture::from(promise).await.is_ok());
        });
    }
    #[cfg(not(feature = "hydrate"))]
    {
        let _ = text;
        done(false)
    }
}
