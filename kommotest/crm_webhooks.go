package kommotest

import "net/http"

type crmHookState struct{}

func (s *Server) webhookRoutes(m *http.ServeMux) {}
