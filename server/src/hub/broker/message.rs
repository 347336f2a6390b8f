//! The pub/sub message `scripts::PUBLISH` sends: one event as `{seq}:{epoch}:{frame}`,
//! a batch of one topic's consecutive events as `B{first}:{epoch}:` followed by
//! `{bytes}:{frame}` for each.

/// The events of one message: the first's seq, the epoch, and the frames in seq order.
#[derive(Debug, PartialEq, Eq)]
pub struct Published<'a> {
    pub first: u64,
    pub epoch: &'a str,
    pub frames: Vec<&'a str>,
}

/// None for anything else (a message this node cannot read is skipped: the next one
/// it reads shows the gap, which is then read from the stream).
pub fn parse(payload: &str) -> Option<Published<'_>> {
    let (batch, rest) = match payload.strip_prefix('B') {
        Some(rest) => (true, rest),
        None => (false, payload),
    };
    let (first, rest) = rest.split_once(':')?;
    let (epoch, mut rest) = rest.split_once(':')?;
    let first = first.parse().ok()?;
    if !batch {
        return Some(Published { first, epoch, frames: vec![rest] });
    }
    let mut frames = Vec::new();
    while !rest.is_empty() {
        let (len, after) = rest.split_once(':')?;
        let len: usize = len.parse().ok()?;
        // `get` refuses a length that runs past the end or splits a character
        frames.push(after.get(..len)?);
        rest = &after[len..];
    }
    (!frames.is_empty()).then_some(Published { first, epoch, frames })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_event_and_a_batch() {
        let one = parse(r#"7:0a1b2c3d:{"seq":7,"data":"a:b"}"#).expect("one");
        assert_eq!(one, Published { first: 7, epoch: "0a1b2c3d", frames: vec![r#"{"seq":7,"data":"a:b"}"#] });
        let frames = ["{\"seq\":8,\"x\":\"é:\"}", "{\"seq\":9}"];
        let batch = format!("B8:e:{}:{}{}:{}", frames[0].len(), frames[0], frames[1].len(), frames[1]);
        assert_eq!(parse(&batch), Some(Published { first: 8, epoch: "e", frames: frames.to_vec() }));
    }

    #[test]
    fn anything_else_is_refused() {
        for bad in ["", "x:e:f", "1:e", "B1:e:", "B1:e:5:abc", "B1:e:x:abc", "B1:e:3:abc9", "B1:e:1:\u{e9}", "B:e:1:a"] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
    }
}
