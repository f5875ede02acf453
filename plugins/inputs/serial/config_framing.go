package serial

import "strings"

// checkMode checks how frames come: streamed by the device, or asked for
// with a request every interval, and the reply timeout.
func (cfg *Config) checkMode(s *settings, bad badFunc) {
	switch strings.ToLower(cfg.Mode) {
	case "", "stream":
		if cfg.Request != "" {
			bad("request", "only applies to mode = \"poll\" (in stream mode the device talks by itself)")
		}
	case "poll":
		s.poll = true
		if s.interval == 0 {
			s.interval = defaultInterval
		}
		if cfg.Request == "" {
			bad("request", "mode = \"poll\" needs the request to send, e.g. 'R\\r\\n'")
		}
	default:
		bad("mode", "%q: want stream or poll", cfg.Mode)
	}
	if s.timeout == 0 {
		s.timeout = defaultTimeout
	}
	if s.poll && s.timeout > s.interval {
		bad("timeout", "%s is longer than interval %s: a reply could not be awaited before the next request", s.timeout, s.interval)
	}

}

// checkFraming checks the checksum, the request template and how a frame
// ends: exactly one of delimiter, frame_length or idle_gap.
func (cfg *Config) checkFraming(s *settings, bad badFunc) {
	ck, ok := parseChecksum(strings.ToLower(cfg.Checksum))
	if !ok {
		bad("checksum", "%q: want none, sum8, xor8 or crc16-modbus", cfg.Checksum)
	}
	s.checksum = ck
	if cfg.Request != "" {
		t, err := parseTemplate(cfg.Request, false)
		if err != nil {
			bad("request", "%v", err)
		}
		s.request = t
	}

	var framings []string
	if cfg.Delimiter != "" {
		framings = append(framings, "delimiter")
		d, err := unescape(cfg.Delimiter)
		if err != nil {
			bad("delimiter", "%v", err)
		}
		s.delim = d
	}
	if cfg.FrameLength != 0 {
		framings = append(framings, "frame_length")
		if cfg.FrameLength < 0 || cfg.FrameLength > maxFrame {
			bad("frame_length", "%d: want 1..%d bytes", cfg.FrameLength, maxFrame)
		} else {
			s.length = cfg.FrameLength
		}
	}
	if cfg.IdleGap != 0 {
		framings = append(framings, "idle_gap")
		s.gap = cfg.IdleGap.D()
		if s.gap >= s.timeout {
			bad("idle_gap", "%s must be shorter than timeout %s", s.gap, s.timeout)
		}
	}
	switch len(framings) {
	case 0:
		bad("delimiter", "no framing: set one of delimiter, frame_length or idle_gap")
	case 1:
	default:
		bad(framings[1], "%s and %s are both set: a frame ends by exactly one of delimiter, frame_length or idle_gap",
			framings[0], framings[1])
	}
	if cfg.Start != "" {
		st, err := unescape(cfg.Start)
		if err != nil {
			bad("start", "%v", err)
		}
		s.start = st
	}
	if s.length > 0 && s.length <= len(s.start)+s.checksum.size() {
		bad("frame_length", "%d bytes leave no room for data after %d start and %d checksum bytes",
			s.length, len(s.start), s.checksum.size())
	}

}
