//! Toasts: short messages in a corner, announced to screen readers, each gone after a
//! while or when dismissed. Any component pushes them through the context.

use leptos::prelude::*;

/// How long a toast stays, unless dismissed.
const TOAST_MS: u32 = 8_000;
/// Most toasts on screen; older ones give way.
const TOASTS_MAX: usize = 5;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ToastKind {
    Success,
    Attention,
    Error,
}

impl ToastKind {
    fn class(self) -> &'static str {
        match self {
            ToastKind::Success => "toast success",
            ToastKind::Attention => "toast attention",
            ToastKind::Error => "toast error",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Toast {
    pub id: u64,
    pub kind: ToastKind,
    pub title: String,
    pub body: String,
    pub link: Option<String>,
}

#[derive(Debug, Clone, Copy)]
pub struct Toasts {
    items: RwSignal<Vec<Toast>>,
    next: RwSignal<u64>,
}

impl Toasts {
    pub fn push(&self, kind: ToastKind, title: String, body: String, link: Option<String>) {
        let id = self.next.get_untracked() + 1;
        self.next.set(id);
        self.items.update(|t| {
            t.push(Toast { id, kind, title, body, link });
            let excess = t.len().saturating_sub(TOASTS_MAX);
            t.drain(..excess);
        });
        let items = self.items;
        #[cfg(feature = "hydrate")]
        gloo_timers::callback::Timeout::new(TOAST_MS, move || items.update(|t| t.retain(|x| x.id != id))).forget();
        #[cfg(not(feature = "hydrate"))]
        let _ = (items, TOAST_MS);
    }

    pub fn error(&self, title: impl Into<String>, body: impl Into<String>) {
        self.push(ToastKind::Error, title.into(), body.into(), None);
    }

    fn dismiss(&self, id: u64) {
        self.items.update(|t| t.retain(|x| x.id != id));
    }
}

pub fn provide_toasts() -> Toasts {
    let toasts = Toasts { items: RwSignal::new(Vec::new()), next: RwSignal::new(0) };
    provide_context(toasts);
    toasts
}

pub fn use_toasts() -> Toasts {
    use_context::<Toasts>().expect("provide_toasts() runs in App")
}

#[component]
pub fn ToastRegion() -> impl IntoView {
    let toasts = use_toasts();
    view! {
        <div class="toasts" role="status" aria-live="polite" aria-label="Notifications">
            <For each=move || toasts.items.get() key=|t| t.id let:toast>
                <div class=toast.kind.class() data-testid="toast">
                    <div class="toast-text">
                        {match toast.link.clone() {
                            Some(href) => view! { <a class="toast-title" href=href>{toast.title.clone()}</a> }.into_any(),
                            None => view! { <strong class="toast-title">{toast.title.clone()}</strong> }.into_any(),
                        }}
                        {(!toast.body.is_empty()).then(|| view! { <span class="toast-body">{toast.body.clone()}</span> })}
                    </div>
                    <button class="icon" aria-label="Dismiss" on:click=move |_| toasts.dismiss(toast.id)>"×"</button>
                </div>
            </For>
        </div>
    }
}
