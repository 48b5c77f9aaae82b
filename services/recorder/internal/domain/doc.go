// Package domain is what the recorder knows about recordings, with no I/O:
// a segment's place in wall-clock time and its S3 key and metadata
// (segment.go), how one ffmpeg run's stream time maps to wall time with
// drift correction (clock.go), the channels to record and the names that
// end up in keys and paths (channel.go), the containers and codecs
// (media.go), when a failing ffmpeg is started again (restart.go), which
// spooled segments to drop when the spool is full (spool.go), and the
// errors the service stops with (errors.go).
package domain
