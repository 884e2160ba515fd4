package main

import (
	"bytes"
	"errors"
	"io"
	"os"
	"strings"
)

// stateFile is the append-only list of imported message ids, one a line.
type stateFile struct {
	f    *os.File
	done map[string]bool
}

func openState(path string) (*stateFile, error) {
	data, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	// A crash may have cut the last line short: keep whole lines only.
	whole := data[:bytes.LastIndexByte(data, '\n')+1]
	s := &stateFile{done: map[string]bool{}}
	for _, id := range strings.Split(string(whole), "\n") {
		if id != "" {
			s.done[id] = true
		}
	}
	if s.f, err = os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644); err != nil {
		return nil, err
	}
	if len(whole) < len(data) {
		if err := s.f.Truncate(int64(len(whole))); err != nil {
			s.f.Close()
			return nil, err
		}
	}
	if _, err := s.f.Seek(int64(len(whole)), io.SeekStart); err != nil {
		s.f.Close()
		return nil, err
	}
	return s, nil
}

// add records an imported id durably: at Kommo's 7 requests per second an
// fsync per message costs nothing noticeable.
func (s *stateFile) add(id string) error {
	if _, err := s.f.WriteString(id + "\n"); err != nil {
		return err
	}
	s.done[id] = true
	return s.f.Sync()
}

func (s *stateFile) Close() error { return s.f.Close() }
