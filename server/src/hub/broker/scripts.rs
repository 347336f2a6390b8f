//! The broker's Lua scripts. Each runs atomically in Redis, so a topic's seq, its
//! stream and its fan-out never disagree, whichever node publishes (the layout of
//! Centrifugo's Redis engine: a meta hash with the epoch and the seq, a stream whose
//! ids are the seqs, and a PUBLISH of the encoded event).
//!
//! Keys: KEYS[1] the topic's meta hash (`e` epoch, `s` last seq), KEYS[2] its stream
//! (entries `{seq}-0` with one field `f`, the event frame as subscribers receive it).

/// Publishes one or more events of one topic, in order. ARGV: channel, stream max
/// length, epoch to use if the topic has none, stream TTL s, meta TTL s, then a
/// prefix and a suffix per event (its frame is `prefix .. seq .. suffix`). Returns
/// {first seq, epoch}. One event is published as `{seq}:{epoch}:{frame}`; several as
/// `B{first}:{epoch}:` then `{bytes}:{frame}` for each, one message for the batch (a
/// node that reads only the first form skips it and reads the gap from the stream).
pub const PUBLISH: &str = r#"
local epoch = redis.call('hget', KEYS[1], 'e')
if not epoch then
  epoch = ARGV[3]
  redis.call('hset', KEYS[1], 'e', epoch)
  redis.call('del', KEYS[2])
end
local n = (#ARGV - 5) / 2
local first = redis.call('hincrby', KEYS[1], 's', n) - n + 1
redis.call('expire', KEYS[1], ARGV[5])
local frames = {}
for i = 0, n - 1 do
  local seq = first + i
  frames[i + 1] = ARGV[6 + 2 * i] .. seq .. ARGV[7 + 2 * i]
  redis.call('xadd', KEYS[2], 'MAXLEN', ARGV[2], seq .. '-0', 'f', frames[i + 1])
end
redis.call('expire', KEYS[2], ARGV[4])
if n == 1 then
  redis.call('publish', ARGV[1], first .. ':' .. epoch .. ':' .. frames[1])
else
  for i, frame in ipairs(frames) do
    frames[i] = #frame .. ':' .. frame
  end
  redis.call('publish', ARGV[1], 'B' .. first .. ':' .. epoch .. ':' .. table.concat(frames))
end
return {first, epoch}
"#;

/// Where a topic stands: its epoch (set to ARGV[1] if it has none, with meta TTL
/// ARGV[2]) and its last seq. Returns {seq, epoch}.
pub const POSITION: &str = r#"
local epoch = redis.call('hget', KEYS[1], 'e')
if not epoch then
  epoch = ARGV[1]
  redis.call('hset', KEYS[1], 'e', epoch)
  redis.call('expire', KEYS[1], ARGV[2])
  redis.call('del', KEYS[2])
end
local seq = tonumber(redis.call('hget', KEYS[1], 's') or '0')
return {seq, epoch}
"#;
