package api

// auditRoutes are the endpoints of the audit log.
var auditRoutes = []route{}
