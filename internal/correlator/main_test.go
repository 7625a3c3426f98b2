package correlator_test

import (
	"testing"

	"github.com/driftlock/driftlock/internal/store/storetest"
)

// TestMain says once when the tests that need PostgreSQL will skip.
func TestMain(m *testing.M) { storetest.Main(m) }
