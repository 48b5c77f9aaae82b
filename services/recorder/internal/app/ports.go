package app

import (
	"context"
	"log/slog"
	"net"
	"time"

	"mediagw/pkg/loginbudget"
	"mediagw/services/recorder/internal/domain"
)

// The interfaces the recorder needs, implemented in internal/adapters.

// Uploader stores a finished segment file (S3: adapters/s3). A file that is
// gone yields an error matching fs.ErrNotExist.
type Uploader interface {
	Upload(ctx context.Context, key, path, contentType string, meta map[string]string) error
}

// Spool keeps finished segments on disk until they are uploaded, in start
// order per channel and bounded in bytes, and holds the work area ffmpeg
// writes the growing segment into (adapters/spool).
type Spool interface {
	// WorkDir is where a channel's segments grow.
	WorkDir(ch string) string
	// Add moves a finished segment file into the queue and returns it with
	// its size. If the spool is then over its bound, the oldest segments
	// not being uploaded are deleted and returned (possibly this one).
	Add(seg domain.Segment, file string) (added domain.Segment, dropped []domain.Segment, err error)
	// Next waits for the oldest queued segment of a channel that is not
	// being uploaded and marks it busy; give it back with Done or Release.
	Next(ctx context.Context, ch string) (*domain.Spooled, error)
	// Done deletes an uploaded segment.
	Done(it *domain.Spooled) error
	// Release gives back a segment whose upload failed; it stays queued.
	Release(it *domain.Spooled)
	// Usage is what waits for upload, over all channels.
	Usage() (bytes int64, segments int)
	// Pending is the number of segments a channel has queued.
	Pending(ch string) int

	// SaveRun records the state of a channel's ffmpeg run (see
	// domain.RunState); LoadRun reads what a predecessor left; ClearRun
	// forgets it.
	SaveRun(ch string, st domain.RunState)
	LoadRun(ch string) (domain.RunState, bool)
	ClearRun(ch string)
	// WorkFiles are the segment files in a channel's work area, by name.
	WorkFiles(ch string) []WorkFile
	// Discard deletes a segment file that cannot be kept.
	Discard(path string)
	// Close releases the spool; queued files stay for the next process.
	Close()
}

// WorkFile is a segment file in the work area.
type WorkFile struct {
	Name string
	Path string
	Size int64
}

// OpenSpool opens (and locks) the spool for channels. Segments left by an
// earlier process are queued again; if they exceed the bound the oldest are
// dropped and returned. A spool another recorder holds yields
// domain.ErrSpoolLocked.
type OpenSpool func(channels []string) (Spool, []domain.Segment, error)

// Segmenter runs the segmenting process of one channel run (ffmpeg:
// adapters/ffmpeg).
type Segmenter interface {
	Start(spec CaptureSpec, log *slog.Logger) (Capture, error)
	// ProbeDuration measures the media in a file, in seconds (for segments
	// whose ffmpeg was killed before it listed them).
	ProbeDuration(ctx context.Context, path string) (float64, error)
}

// CaptureSpec is one run: read Input, cut segments of SegmentLength into
// Dir with file names starting with Prefix.
type CaptureSpec struct {
	Input         string // never with credentials: it is on the command line
	RTSPTimeout   time.Duration
	Dir           string
	Prefix        string
	SegmentLength time.Duration
	Container     domain.Container
	Codec         string // "" or "copy", h264, hevc
	Size          string // resize when transcoding
	// Audio is what the ffmpeg path does with the first audio stream:
	// "" drops it, "aac" encodes it to AAC (e.g. G.711 from a camera).
	Audio string
	// Dial, when set, opens a connection to Input in memory (the
	// channel's relay); an in-process client uses it instead of a socket.
	Dial func() (net.Conn, error)
}

// Capture is a running segmenter.
type Capture interface {
	Pid() int
	// Listed delivers finished segments; it is closed when the run ends.
	Listed() <-chan Listed
	// Done is closed when the process has exited and its output is read.
	Done() <-chan struct{}
	// Err is the exit status once Done is closed.
	Err() error
	// Codec is the output video codec ("" until known).
	Codec() string
	// FirstPacket is the stream time of the first packet written to a file.
	FirstPacket(file string) (float64, bool)
	// Stop asks the run to finish its segment and end, killing it after grace.
	Stop(grace time.Duration)
}

// Anchored is a Capture that knows the wall time of its stream time 0 from
// the source itself (RTCP sender reports), which then wins over the
// relay's arrival time of the first frame.
type Anchored interface {
	Anchor() (time.Time, bool)
}

// Listed is a finished segment as the segmenter listed it, with the time
// the entry was read.
type Listed struct {
	domain.ListEntry
	Path string
	Seen time.Time
}

// Relays opens the RTSP relay of a channel (adapters/rtsp): the segmenter
// reads the relay's loopback URL, the relay adds the credentials.
type Relays interface {
	Open(spec RelaySpec) (Relay, error)
}

// RelaySpec configures one channel's relay.
type RelaySpec struct {
	Gateway  string // the gateway's id, for errors and logs
	Upstream string // the gateway's stream URL, without credentials
	// Login admits one login: the relay calls it after the gateway's
	// challenge, before it sends the first request carrying credentials on
	// a connection, and reports what came of that one request through the
	// returned Login's Finish. An error refuses the login: nothing is sent
	// and the connection ends. Nil: the stream needs no credentials.
	Login func(ctx context.Context) (*Login, error)
	// AuthFailed is told why the relay ended a connection over
	// authentication it will not do (e.g. a gateway that offers only Basic,
	// which would send the password in clear text). The error names the
	// gateway and holds no secret.
	AuthFailed func(err error)
	// Playing is called with the arrival time of the first media frame
	// after each successful PLAY.
	Playing func(firstFrame time.Time)
	Logger  *slog.Logger
}

// Login is one admitted login: the credentials to answer the gateway's
// challenge with, and where to report what the gateway made of them.
type Login struct {
	User, Password string
	// Finish is called exactly once with what came of the one request that
	// carried the credentials first (loginbudget.Accepted, Rejected,
	// Unanswered or NotSent).
	Finish func(ctx context.Context, r loginbudget.Result)
	// Refused is called when, after Finish(Accepted), the gateway refuses
	// the credentials on a later request of the connection (a 401 that is
	// not about a stale nonce: its password changed). That is a failed
	// login at the gateway all the same.
	Refused func(ctx context.Context)
}

// Relay is an open relay.
type Relay interface {
	URL() string // credential-free loopback URL
	// Dial opens a relayed connection in memory (for a client in this
	// process); requests use URL()'s URIs.
	Dial() (net.Conn, error)
	ReceivedBytes() uint64
	Close() error
}

// Password is the RTSP password (SSM SecureString: adapters/ssm).
type Password interface {
	// Get returns the password and the credential that names it (the
	// parameter and its version; never the value). It is read once, and
	// again once Current has seen a newer version.
	Get(ctx context.Context) (password string, cred loginbudget.Credential, err error)
	// Current reads which version the parameter holds now (not its value).
	Current(ctx context.Context) (loginbudget.Credential, error)
}

// LoginBudget is the login budget every component that logs in to a
// gateway shares (pkg/loginbudget on DynamoDB: adapters/budget): at most a
// few failed logins per gateway in the lock window, and never again a
// credential the gateway rejected.
type LoginBudget interface {
	// Begin records a pending login with cred before it is sent. A
	// *loginbudget.RefusedError refuses it; any error means nothing may be
	// sent.
	Begin(ctx context.Context, gateway string, cred loginbudget.Credential) (LoginAttempt, error)
	// Check says, recording nothing, whether a login with cred would be
	// allowed now: nil, or a *loginbudget.RefusedError.
	Check(ctx context.Context, gateway string, cred loginbudget.Credential) error
	// Record counts a rejection the gateway answered outside an admitted
	// login (to a request riding on an accepted one).
	Record(ctx context.Context, gateway string, cred loginbudget.Credential, r loginbudget.Result) error
}

// LoginAttempt is a login Begin admitted.
type LoginAttempt interface {
	// Finish records what it came to; an error (for the log) leaves it
	// pending, which counts as a failure.
	Finish(ctx context.Context, r loginbudget.Result) error
}

// Metrics records what the recorder does (Prometheus: adapters/prometheus).
type Metrics interface {
	SegmentWritten(ch string, end time.Time)
	SegmentUploaded(ch string, bytes int64, took time.Duration, end time.Time)
	// SegmentFailed: lost for a reason other than the spool bound.
	SegmentFailed(ch, reason string)
	SegmentDropped(ch string)
	UploadFailed(ch string)
	Spool(bytes int64, segments int)
	FFmpegRestarted(ch, reason string)
	ChannelFailing(ch string, failing bool)
	// CredentialsRejected: logins stopped for reason (a loginbudget.Reason),
	// or resumed ("").
	CredentialsRejected(reason string)
	ClockDrift(ch string, drift time.Duration)
	// ReceivedBytes exposes a channel's relayed byte count, read on scrape.
	ReceivedBytes(ch string, count func() uint64)
}
