//! The artifact gallery: image thumbnails that appear as `artifact` events arrive, a
//! click (or Enter) to view one large, arrows to the next, Escape to close; files and
//! exports as download links.

use crate::model::number::fixed;
use crate::model::workflow::WorkflowModel;
use crate::protocol::{Artifact, ArtifactKind};
use leptos::html;
use leptos::prelude::*;

fn size(bytes: u64) -> String {
    match bytes {
        0..=1023 => format!("{bytes} B"),
        1024..=1_048_575 => format!("{} KiB", fixed(bytes as f64 / 1024.0, 1)),
        _ => format!("{} MiB", fixed(bytes as f64 / 1_048_576.0, 1)),
    }
}

#[component]
pub fn ArtifactGallery(model: Memo<Option<WorkflowModel>>) -> impl IntoView {
    let artifacts: Memo<Vec<Artifact>> = Memo::new(move |_| model.with(|m| m.as_ref().map(|m| m.artifacts.clone()).unwrap_or_default()));
    let images = Memo::new(move |_| artifacts.with(|a| a.iter().filter(|a| a.kind == ArtifactKind::Image).cloned().collect::<Vec<_>>()));
    let files = Memo::new(move |_| artifacts.with(|a| a.iter().filter(|a| a.kind != ArtifactKind::Image).cloned().collect::<Vec<_>>()));
    let numbered = Memo::new(move |_| images.get().into_iter().enumerate().collect::<Vec<(usize, Artifact)>>());
    let open = RwSignal::new(None::<usize>);
    let close_button: NodeRef<html::Button> = NodeRef::new();
    let step = move |by: isize| {
        let n = images.with(Vec::len) as isize;
        open.update(|o| {
            if let Some(i) = o {
                *i = ((*i as isize + by).rem_euclid(n.max(1))) as usize;
            }
        })
    };
    let on_key = move |ev: leptos::ev::KeyboardEvent| match ev.key().as_str() {
        "Escape" => open.set(None),
        "ArrowRight" => step(1),
        "ArrowLeft" => step(-1),
        _ => {}
    };
    Effect::new(move |_| {
        if open.get().is_some() {
            if let Some(b) = close_button.get() {
                let _ = b.focus();
            }
        }
    });
    let lightbox = move || {
        let i = open.get()?;
        let a = images.with(|v| v.get(i).cloned())?;
        let count = images.with(Vec::len);
        Some(view! {
            <div class="lightbox" role="dialog" aria-modal="true" aria-label=a.name.clone() on:keydown=on_key
                data-testid="lightbox" on:click=move |_| open.set(None)>
                <figure on:click=|ev| ev.stop_propagation()>
                    <img src=a.url.clone() alt=a.name.clone()/>
                    <figcaption>
                        <span>{format!("{} ({} of {count})", a.name, i + 1)}</span>
                        <button on:click=move |_| step(-1) aria-label="Previous image">"←"</button>
                        <button on:click=move |_| step(1) aria-label="Next image">"→"</button>
                        <a href=a.url.clone() download=a.name.clone()>"Download"</a>
                        <button node_ref=close_button on:click=move |_| open.set(None) data-testid="lightbox-close">"Close"</button>
                    </figcaption>
                </figure>
            </div>
        })
    };
    view! {
        <section class="panel gallery" aria-labelledby="artifacts-heading">
            <h2 id="artifacts-heading">"Artifacts"</h2>
            <Show when=move || artifacts.with(|a| !a.is_empty()) fallback=|| view! {
                <p class="muted">"No artifacts yet: a stage publishes one with " <code>"::artifact path [image|file|export]"</code> "."</p>
            }>
                <ul class="thumbs" data-testid="thumbs">
                    <For each=move || numbered.get() key=|(i, a)| format!("{i}:{}", a.name) let:item>
                        <li>
                            <button class="thumb" on:click=move |_| open.set(Some(item.0)) aria-label=format!("View {}", item.1.name)>
                                <img src=item.1.url.clone() alt=item.1.name.clone() loading="lazy" data-testid="thumb"/>
                            </button>
                        </li>
                    </For>
                </ul>
                <ul class="files">
                    <For each=move || files.get() key=|a| a.name.clone() let:a>
                        <li data-testid="file-artifact">
                            <a href=a.url.clone() download=a.name.clone()>{a.name.clone()}</a>
                            <span class="muted">{format!(" {} · {}", crate::components::badge::state_label(&a.kind), size(a.bytes))}</span>
                        </li>
                    </For>
                </ul>
            </Show>
            {lightbox}
        </section>
    }
}
