package stack_test

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// cfnLint is the pinned cfn-lint scripts/bootstrap.sh installs.
var cfnLint = filepath.Join(repoRoot, ".tools", "cfn-lint-venv", "bin", "cfn-lint")

// TestCfnLintFindsNoErrorInTheTemplate lints the synthesized template as
// CloudFormation will read it. Warnings are printed; errors fail.
func TestCfnLintFindsNoErrorInTheTemplate(t *testing.T) {
	if _, err := os.Stat(cfnLint); err != nil {
		t.Fatalf("cfn-lint is not installed (%v): run scripts/bootstrap.sh", err)
	}
	s := get(t)
	raw, err := json.MarshalIndent(s.template.ToJSON(), "", " ")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "Mediagw.template.json")
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(cfnLint, "--format", "parseable", path).CombinedOutput()
	var exit *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exit) && exit.ExitCode()&2 == 0:
		// 4 and 8 are warnings and informational findings.
		t.Logf("cfn-lint warnings:\n%s", out)
	default:
		t.Errorf("cfn-lint: %v\n%s", err, out)
	}
}
