package kommotest

import "net/http"

type crmHookState struct{}

type hookField struct{ key, value string }

func (s *Server) queueCRMHookLocked(event string, fields []hookField) {}

func (s *Server) webhookRoutes(m *http.ServeMux) {}
