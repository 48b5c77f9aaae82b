package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestCLIWrapperHandsThePasswordOverWithoutArguments runs cdk-cli.js with a
// stand-in for the CDK CLI that reports what it got: the password reaches
// the CLI as a parameter, and is neither in the process's arguments nor in
// the environment the CDK app would inherit.
func TestCLIWrapperHandsThePasswordOverWithoutArguments(t *testing.T) {
	dir := t.TempDir()
	lib := filepath.Join(dir, "node_modules", "aws-cdk", "lib")
	if err := os.MkdirAll(lib, 0o755); err != nil {
		t.Fatal(err)
	}
	fake := `const fs = require('fs');
exports.cli = (args) => console.log(JSON.stringify({
  args, cmdline: fs.readFileSync('/proc/self/cmdline', 'utf8'), env: process.env.MEDIAGW_PASSWORD || '' }));`
	if err := os.WriteFile(filepath.Join(lib, "index.js"), []byte(fake), 0o644); err != nil {
		t.Fatal(err)
	}
	const password = "Wr4pper-Secret"
	cmd := exec.Command("node", "cdk-cli.js", "deploy", "Mediagw", "--parameters", "Timezone=8")
	cmd.Env = append(os.Environ(), "CDK_CLI_DIR="+dir, "MEDIAGW_PASSWORD="+password)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("node cdk-cli.js: %v", err)
	}
	var got struct {
		Args    []string
		Cmdline string
		Env     string
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if !slices.Equal(got.Args, []string{"deploy", "Mediagw", "--parameters", "Timezone=8", "--parameters", "Password=" + password}) {
		t.Errorf("the CLI got %q", got.Args)
	}
	if strings.Contains(got.Cmdline, password) || got.Env != "" {
		t.Errorf("the password is visible: arguments %q, environment %q", got.Cmdline, got.Env)
	}
}
