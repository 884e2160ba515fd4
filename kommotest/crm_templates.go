package kommotest

import "net/http"

type templateState struct{}

func (s *Server) templateRoutes(m *http.ServeMux) {}
