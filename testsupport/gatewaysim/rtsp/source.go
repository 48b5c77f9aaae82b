package rtsp

import (
	"hash/fnv"
	"sync"
	"time"
)

// liveClock maps wall time to frame numbers. Frame numbers count from the
// Unix epoch, so two server instances agree and a restarted simulator
// continues where the cameras "would" be; the monotonic reading of start
// keeps the mapping immune to wall clock steps while the server runs.
type liveClock struct {
	start     time.Time
	baseFrame int64 // frame number at start
	baseAudio int64 // AAC frame number at start
}

func newLiveClock(now time.Time) liveClock {
	return liveClock{
		start:     now,
		baseFrame: now.UnixNano() / (int64(time.Second) / frameRate),
		baseAudio: now.UnixNano() / int64(audioFrameDuration),
	}
}

// audioFrameAt and audioTimeOf are frameAt and timeOf for AAC frames.
func (c liveClock) audioFrameAt(t time.Time) int64 {
	return c.baseAudio + int64(t.Sub(c.start)/audioFrameDuration)
}

func (c liveClock) audioTimeOf(frame int64) time.Time {
	return c.start.Add(time.Duration(frame-c.baseAudio) * audioFrameDuration)
}

func (c liveClock) frameAt(t time.Time) int64 {
	return c.baseFrame + int64(t.Sub(c.start)/(time.Second/frameRate))
}

func (c liveClock) timeOf(frame int64) time.Time {
	return c.start.Add(time.Duration(frame-c.baseFrame) * (time.Second / frameRate))
}

// cameraOffset shifts each camera's clock by an amount derived from its path
// so cameras show different parts of the loop. The stream digit is left out
// so a camera's main and sub streams stay in step, as on a real camera.
func cameraOffset(streamPath string) int64 {
	h := fnv.New64a()
	h.Write([]byte(streamPath[:max(0, len(streamPath)-1)]))
	return int64(h.Sum64() >> 33) // < 2^31 frames, keeps arithmetic far from overflow
}

// source is one camera stream. Its position is computed from the clock, so
// an idle source costs nothing; a sender goroutine runs only while clients
// are subscribed and fans each frame out to all of them.
//
// A source's frame n (n = clock frame + offset) shows clip frame
// n mod len(frames) and carries RTP timestamp n*3600 (mod 2^32), so
// timestamps keep increasing across loop wraps and agree between clients.
// With audio, AAC frame a (a = clock audio frame + offset) is audio clip
// frame a mod len(frames) with RTP timestamp a*1024: both tracks run on the
// same wall clock, each at its own RTP clock rate, and each is sent once it
// is due, so a client gets them interleaved as from a camera.
type source struct {
	clip      *clip
	audio     *audioClip // nil: no audio track
	clock     liveClock
	offset    int64
	ssrc      uint32
	audioSSRC uint32

	mu      sync.Mutex
	subs    map[*subscriber]struct{}
	running bool  // a sender goroutine is active
	next    int64 // next source frame the sender sends, while running
	// nextAudio is the next AAC frame the sender sends, while running.
	nextAudio int64
}

// liveFrame is one frame handed to subscribers; the payloads are shared and
// read-only.
type liveFrame struct {
	track     int // trackVideo or trackAudio
	timestamp uint32
	at        time.Time // when the frame is live, for RTCP sender reports
	frame     *clipFrame
}

// subscriber is one playing client of a source.
type subscriber struct {
	start int64 // first source frame delivered: a keyframe
	// video and audio are the tracks the client set up; audioStart is the
	// first AAC frame delivered, the first at or after start's time.
	video, audio bool
	audioStart   int64
	queue        chan liveFrame // bounded: a client that can't keep up is dropped
	// overflow is called (once, with the source locked) when the queue is
	// full; it must not block.
	overflow func()
}

func (s *source) frameOf(n int64) *clipFrame {
	l := int64(len(s.clip.frames))
	return &s.clip.frames[((n%l)+l)%l]
}

// nextKeyframe returns the first source frame >= n that is a keyframe.
func (s *source) nextKeyframe(n int64) int64 {
	for i := range int64(len(s.clip.frames)) {
		if s.frameOf(n + i).key {
			return n + i
		}
	}
	return n // unreachable: frames[0] is a keyframe
}

// subscribe adds sub, choosing its start at the next keyframe of the live
// stream, and reports whether the caller must start the sender goroutine
// (beginning at frame startSender).
func (s *source) subscribe(sub *subscriber, now int64) (startSender bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	from := now
	if s.running && s.next > from {
		from = s.next // frames before next have been sent already
	}
	sub.start = s.nextKeyframe(from)
	sub.audioStart = s.audioFrameFrom(sub.start)
	s.subs[sub] = struct{}{}
	if s.running {
		return false
	}
	s.running, s.next = true, now
	s.nextAudio = s.audioFrameFrom(now)
	return true
}

// audioFrameFrom is the first AAC frame live at or after source frame n.
func (s *source) audioFrameFrom(n int64) int64 {
	t := s.clock.timeOf(n - s.offset)
	a := s.clock.audioFrameAt(t)
	if s.clock.audioTimeOf(a).Before(t) {
		a++
	}
	return a + s.offset
}

func (s *source) audioFrameOf(a int64) *clipFrame {
	l := int64(len(s.audio.frames))
	return &s.audio.frames[((a%l)+l)%l]
}

func (s *source) unsubscribe(sub *subscriber) {
	s.mu.Lock()
	delete(s.subs, sub)
	s.mu.Unlock()
}

// sendDue delivers every frame due at clock frame now and reports whether the
// sender should keep running; it stops (and says so) once no one listens.
func (s *source) sendDue(now int64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.subs) == 0 {
		s.running = false
		return false
	}
	// After a long stall (suspended machine) do not flood clients with a
	// burst of stale frames: jump to the live position and resume every
	// client at the next keyframe, so none gets a frame whose references it
	// missed.
	if now-s.next > 5*frameRate {
		s.next = now
		s.nextAudio = s.audioFrameFrom(now)
		for sub := range s.subs {
			if sub.start < now {
				sub.start = s.nextKeyframe(now)
				sub.audioStart = s.audioFrameFrom(sub.start)
			}
		}
	}
	for ; s.next <= now; s.next++ {
		lf := liveFrame{
			track:     trackVideo,
			timestamp: uint32(s.next * ticksPerFrame),
			at:        s.clock.timeOf(s.next - s.offset),
			frame:     s.frameOf(s.next),
		}
		s.deliver(lf, func(sub *subscriber) bool { return sub.video && s.next >= sub.start })
	}
	if s.audio == nil {
		return true
	}
	// AAC frames live by the time of the video frame just sent.
	due := s.clock.audioFrameAt(s.clock.timeOf(now-s.offset)) + s.offset
	for ; s.nextAudio <= due; s.nextAudio++ {
		lf := liveFrame{
			track:     trackAudio,
			timestamp: uint32(s.nextAudio * samplesPerAAC),
			at:        s.clock.audioTimeOf(s.nextAudio - s.offset),
			frame:     s.audioFrameOf(s.nextAudio),
		}
		s.deliver(lf, func(sub *subscriber) bool { return sub.audio && s.nextAudio >= sub.audioStart })
	}
	return true
}

// deliver queues lf for every subscriber that wants it, dropping those
// whose queue is full. s.mu is held.
func (s *source) deliver(lf liveFrame, wants func(*subscriber) bool) {
	for sub := range s.subs {
		if !wants(sub) {
			continue
		}
		select {
		case sub.queue <- lf:
		default:
			delete(s.subs, sub)
			sub.overflow()
		}
	}
}

// runSender paces the source in real time until its last subscriber leaves
// or done is closed.
func (s *source) runSender(done <-chan struct{}) {
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-done:
			s.mu.Lock()
			s.running = false
			s.mu.Unlock()
			return
		case <-timer.C:
		}
		if !s.sendDue(s.clock.frameAt(time.Now()) + s.offset) {
			return
		}
		s.mu.Lock()
		next := s.next
		s.mu.Unlock()
		timer.Reset(time.Until(s.clock.timeOf(next - s.offset)))
	}
}
