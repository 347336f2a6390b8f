//! The broker's Lua scripts. Each runs atomically in Redis, so a topic's seq, its
//! stream and its fan-out never disagree, whichever node publishes (the layout of
//! Centrifugo's Redis engine: a meta hash with the epoch and the seq, a stream whose
//! ids are the seqs, and a PUBLISH of the encoded event).
//!
//! Keys: KEYS[1] the topic's meta hash (`e` epoch, `s` last seq), KEYS[2] its stream
//! (entries `{seq}-0` with one field `f`, the event frame as subscribers receive it).

/// ARGV: channel, frame prefix, frame suffix (the frame is `prefix .. seq .. suffix`),
/// stream max length, epoch to use if the topic has none, stream TTL s, meta TTL s.
/// Returns {seq, epoch}. The message published is `{seq}:{epoch}:{frame}`.
pub const PUBLISH: &str = r#"
local epoch = redis.call('hget', KEYS[1], 'e')
if not epoch then
  epoch = ARGV[5]
  redis.call('hset', KEYS[1], 'e', epoch)
  redis.call('del', KEYS[2])
end
local seq = redis.call('hincrby', KEYS[1], 's', 1)
redis.call('expire', KEYS[1], ARGV[7])
local frame = ARGV[2] .. seq .. ARGV[3]
redis.call('xadd', KEYS[2], 'MAXLEN', ARGV[4], seq .. '-0', 'f', frame)
redis.call('expire', KEYS[2], ARGV[6])
redis.call('publish', ARGV[1], seq .. ':' .. epoch .. ':' .. frame)
return {seq, epoch}
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
