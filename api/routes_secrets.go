package api

// secretRoutes are the endpoints of the secrets store.
var secretRoutes = []route{}
