package isapi

import (
	"mediagw/pkg/loginbudget"
	"mediagw/testsupport/loginbudgettest"
)

// NewMemBudget is the configurator's login budget, in memory.
func NewMemBudget() *loginbudget.Budget {
	return loginbudget.New(loginbudgettest.NewStore(), "configurator")
}
