// Package localtest is a stand-in for the recorder binary in the
// task-manager's tests: a test binary runs it when started with the
// argument "standin-recorder" (see Maybe), so tests need no build step.
//
// It behaves by what RECORDER_DEVICE_INDEX contains:
//
//	"crash"      exits with code 3 after 100 ms
//	"ignoreterm" ignores SIGTERM (only SIGKILL ends it)
//	"grandchild" starts `sleep 300` in its process group first
//	otherwise    runs until SIGTERM, then exits 0
//
// It writes its environment to $RECORDER_SPOOL_DIR/<gateway>/<device>/env-<pid>
// so tests can check what a task is given, once its signal handling is in
// place: a test that has seen the file can stop the task and know how it
// will take the SIGTERM.
package localtest

import (
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"
)

// Arg is the first argument that makes a test binary a stand-in recorder.
const Arg = "standin-recorder"

// Maybe runs the stand-in and exits if the process was started as one.
// Call it first in TestMain.
func Maybe() {
	if len(os.Args) > 1 && os.Args[1] == Arg {
		os.Exit(run())
	}
}

func run() int {
	dev := os.Getenv("RECORDER_DEVICE_INDEX")
	spool := os.Getenv("RECORDER_SPOOL_DIR")
	term := make(chan os.Signal, 1)
	if strings.Contains(dev, "ignoreterm") {
		signal.Ignore(syscall.SIGTERM)
	} else {
		signal.Notify(term, syscall.SIGTERM)
	}
	if spool != "" {
		// Where the recorder keeps a device's spool.
		spool = filepath.Join(spool, os.Getenv("RECORDER_GATEWAY_ID"), dev)
		if err := os.MkdirAll(spool, 0o750); err != nil {
			return 1
		}
		env := os.Environ()
		sort.Strings(env)
		_ = os.WriteFile(filepath.Join(spool, fmt.Sprintf("env-%d", os.Getpid())), []byte(strings.Join(env, "\n")+"\n"), 0o600)
	}
	switch {
	case strings.Contains(dev, "crash"):
		// A recorder that fails soon after its start, as one whose camera
		// refuses it does.
		time.Sleep(100 * time.Millisecond)
		return 3
	case strings.Contains(dev, "ignoreterm"):
		select {}
	case strings.Contains(dev, "grandchild"):
		c := exec.Command("sleep", "300")
		if err := c.Start(); err != nil {
			return 1
		}
		if spool != "" {
			_ = os.WriteFile(filepath.Join(spool, "grandchild.pid"), []byte(fmt.Sprint(c.Process.Pid)), 0o600)
		}
	}
	<-term
	return 0
}
