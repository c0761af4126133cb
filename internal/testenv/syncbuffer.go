package testenv

import (
	"bytes"
	"sync"
)

// SyncBuffer is a buffer that goroutines may write to, and a test read,
// at the same time: a log sink for a server or several workers under test.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
