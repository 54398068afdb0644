package pvesim

// routeTable maps every served route, in the schema's template form, to
// its handler.
func (s *Sim) routeTable() map[Route]handler {
	t := map[Route]handler{}
	add := func(method, path string, h handler) { t[Route{method, path}] = h }
	// Routes that read or change backup volumes, or report storage
	// usage, first rescan the backup storages in a directory, which
	// other simulators may have changed (backupdir.go).
	sync := s.syncingBackups

	add("GET", "/version", s.getVersion)
	add("POST", "/access/ticket", s.handleTicket)

	add("GET", "/cluster/status", s.getClusterStatus)
	add("GET", "/cluster/resources", sync(s.getClusterResources))
	add("GET", "/cluster/nextid", s.getNextID)
	add("GET", "/cluster/tasks", s.getClusterTasks)

	add("GET", "/cluster/sdn/zones", s.listZones)
	add("POST", "/cluster/sdn/zones", s.createZone)
	add("GET", "/cluster/sdn/zones/{zone}", s.getZone)
	add("PUT", "/cluster/sdn/zones/{zone}", s.updateZone)
	add("DELETE", "/cluster/sdn/zones/{zone}", s.deleteZone)
	add("GET", "/cluster/sdn/vnets", s.listVnets)
	add("POST", "/cluster/sdn/vnets", s.createVnet)
	add("GET", "/cluster/sdn/vnets/{vnet}", s.getVnet)
	add("PUT", "/cluster/sdn/vnets/{vnet}", s.updateVnet)
	add("DELETE", "/cluster/sdn/vnets/{vnet}", s.deleteVnet)
	add("PUT", "/cluster/sdn", s.applySDN)

	add("GET", "/nodes", s.getNodes)
	add("GET", "/nodes/{node}/status", s.getNodeStatus)
	add("GET", "/nodes/{node}/network", s.getNetwork)

	for _, kind := range []string{kindQemu, kindLXC} {
		k := kind
		base := "/nodes/{node}/" + k
		guest := base + "/{vmid}"
		add("GET", base, func(q *req) (any, error) { return s.listGuests(q, k) })
		add("POST", base, sync(func(q *req) (any, error) { return s.createGuest(q, k) }))
		add("GET", guest+"/status/current", func(q *req) (any, error) { return s.guestStatus(q, k) })
		add("POST", guest+"/status/start", func(q *req) (any, error) { return s.startGuest(q, k) })
		add("POST", guest+"/status/stop", func(q *req) (any, error) { return s.stopGuest(q, k, false) })
		add("POST", guest+"/status/shutdown", func(q *req) (any, error) { return s.stopGuest(q, k, true) })
		add("GET", guest+"/config", func(q *req) (any, error) { return s.getConfig(q, k) })
		add("PUT", guest+"/config", func(q *req) (any, error) { return s.updateConfig(q, k, false) })
		add("POST", guest+"/clone", func(q *req) (any, error) { return s.cloneGuest(q, k) })
		add("DELETE", guest, func(q *req) (any, error) { return s.deleteGuest(q, k) })
		add("POST", guest+"/migrate", func(q *req) (any, error) { return s.migrateGuest(q, k) })
		add("GET", guest+"/snapshot", func(q *req) (any, error) { return s.listSnapshots(q, k) })
		add("POST", guest+"/snapshot", func(q *req) (any, error) { return s.createSnapshot(q, k) })
		add("DELETE", guest+"/snapshot/{snapname}", func(q *req) (any, error) { return s.deleteSnapshot(q, k) })
		add("POST", guest+"/snapshot/{snapname}/rollback", func(q *req) (any, error) { return s.rollbackSnapshot(q, k) })
		add("PUT", guest+"/resize", func(q *req) (any, error) { return s.resizeDisk(q, k) })
	}
	add("POST", "/nodes/{node}/qemu/{vmid}/config", func(q *req) (any, error) { return s.updateConfig(q, kindQemu, true) })
	add("POST", "/nodes/{node}/qemu/{vmid}/template", s.templateGuest)
	add("POST", "/nodes/{node}/qemu/{vmid}/move_disk", s.moveDisk)
	add("POST", "/nodes/{node}/lxc/{vmid}/move_volume", s.moveVolume)

	add("GET", "/nodes/{node}/storage", sync(s.listNodeStorage))
	add("GET", "/nodes/{node}/storage/{storage}/status", sync(s.storageStatus))
	add("GET", "/nodes/{node}/storage/{storage}/content", sync(s.storageContent))
	add("DELETE", "/nodes/{node}/storage/{storage}/content/{volume}", sync(s.deleteVolume))
	add("POST", "/nodes/{node}/vzdump", sync(s.vzdump))

	add("GET", "/nodes/{node}/tasks", s.listNodeTasks)
	add("GET", "/nodes/{node}/tasks/{upid}/status", s.taskStatus)
	add("GET", "/nodes/{node}/tasks/{upid}/log", s.taskLog)
	add("DELETE", "/nodes/{node}/tasks/{upid}", s.stopTask)

	add("GET", "/storage", s.listStorageConfig)
	add("GET", "/storage/{storage}", s.getStorageConfig)
	return t
}
