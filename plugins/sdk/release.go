package sdk

// FrameReleaser is implemented by a plugin that reuses the memory of the
// frames it returns: an input those of Gather, a processor those of
// Process; an output implements it to let its own process reuse the
// memory of its Publish calls (see Outputs below). ReleaseFrame gives
// such a frame back once nothing reads it any more; the plugin may then
// overwrite or recycle what it allocated itself for that frame. The core
// may also never release a frame (it was empty, dropped, or the plugin
// runs where frames are not given back), so a plugin must allocate anew
// when nothing was given back, and must not keep a list of unreleased
// frames that grows without bound.
//
// Inputs. When the core is done with a frame that Gather returned (every
// processor has run and its messages are queued), it calls ReleaseFrame
// with that frame, after which the input may overwrite the points its
// batches held; ReleaseFrame may be called while Gather runs. In its own
// process an input gets the frame back once the plugin server has sent it
// (the host's end of the connection then reuses the decoded copy's points
// in the same way).
//
// Processors. Implementing FrameReleaser is also the processor's promise
// that it keeps no reference into a frame once Process has returned it:
// not into the frame it was given (its batches and their points slices,
// its messages and their payloads, pictures' data; strings may be kept,
// they are immutable) and not into the frame it returned. In return:
//
//   - In its own process the SDK decodes the next request's points into
//     the slices of an earlier request, and calls ReleaseFrame with the
//     frame Process returned once the reply is encoded: after Process has
//     returned, before the next Process call starts, never concurrently
//     with Process. The processor may then recycle the memory it
//     allocated for that frame (payload buffers, points slices it made),
//     but not the memory of the frame it was given, which may be in the
//     returned frame too (a frame changed in place) and is the SDK's to
//     reuse. A processor that does not implement FrameReleaser is given
//     frames of its own every call, which it may keep.
//   - In the gateway's process the core never gives an in-process
//     processor's frame back: the messages it rendered go to the outputs'
//     queues, which keep their payloads until delivered. The frame a
//     processor is given there is the input's, which the input reuses
//     after the chain, as for every processor. (An isolated processor's
//     frames are given back to the gateway's end of its connection, which
//     decodes the payloads of later replies into their memory, once their
//     messages have left every queue and output; the plugin's process sees
//     nothing of that: core/agent/settle.go.)
//
// Outputs. An output returns no frames, so its ReleaseFrame is never
// called; implementing FrameReleaser is the output's promise that once
// Publish has returned nil it keeps no reference into the messages it
// was given: not the slice, not a payload (strings, topics among them,
// may be kept). Until then, and after Publish returned an error, it may
// still read them, from any goroutine. In return, in its own process,
// the SDK decodes a later Publish request's payloads and message list
// into the memory of an earlier call that returned nil, once that call's
// reply is sent, and its topics are strings handed out before when their
// bytes repeat. The memory of a call that failed is left to the garbage
// collector: an output that gave up on messages a client library still
// holds (handed to its writer, which goes on reading them until the
// connection it gave up on is torn down) needs no copy for that. An
// output that keeps a message past a successful Publish (a last value it
// republishes) copies it; one that does not implement FrameReleaser gets
// messages of its own every call, which it may keep. In the gateway's
// process nothing changes: the core's queues own the messages, which an
// output may read until Publish returns, and never reuse them.
//
// Frames of HandleCommand and Stream are never given back.
//
// Why: at 10 polls a second of 1,000 points, a poll's points are a third
// of what the gateway allocates, and the garbage collector's cycles were
// about a tenth of its CPU; in an isolated processors.template the
// decoded points and the rendered payload were ~140 KB per poll, all of
// that process's garbage; in an isolated outputs.mqtt the decoded ~64 KB
// payload was half of its.
type FrameReleaser interface {
	ReleaseFrame(f *Frame)
}
