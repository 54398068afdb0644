package client

import (
	"context"
	"net/http"
	"net/url"
)

// Paths of the capacity API (docs/tenancy.md).
const (
	capacityPath         = "/v1/capacity"
	capacityPoliciesPath = "/v1/capacity/policies"
)

// Capacity is an amount of the three resources a node offers: vCPUs,
// memory in MiB and local disk in GiB.
type Capacity struct {
	VCPUs     int64 `json:"vcpus"`
	MemoryMiB int64 `json:"memory_mib"`
	DiskGiB   int64 `json:"disk_gib"`
}

// Headroom is the capacity of a node or the cluster: what may be allocated
// under its policy (nothing on an offline node), what its guests and VM
// creates in flight have been given, what was last measured in use, and
// Free = Allocatable − Allocated, negative where allocations exceed the
// policy.
type Headroom struct {
	Allocatable Capacity `json:"allocatable"`
	Allocated   Capacity `json:"allocated"`
	Used        Capacity `json:"used"`
	Free        Capacity `json:"free"`
}

// CapacityForecast is the number of days until each resource is fully
// allocated at the trend of the allocation history; nil for a resource
// that is not filling up.
type CapacityForecast struct {
	VCPUs     *float64 `json:"vcpus"`
	MemoryMiB *float64 `json:"memory_mib"`
	DiskGiB   *float64 `json:"disk_gib"`
}

// NodeCapacity is one node's part of a CapacityReport. Physical is its
// CPUs, memory and local storage for VM images (0 when it has none: its
// disks then count on no node).
type NodeCapacity struct {
	Name     string   `json:"name"`
	Group    string   `json:"group"`
	Online   bool     `json:"online"`
	Physical Capacity `json:"physical"`
	Headroom
	Forecast CapacityForecast `json:"forecast_days"`
}

// ClusterCapacity is the sum over the nodes of a CapacityReport.
type ClusterCapacity struct {
	Physical Capacity `json:"physical"`
	Headroom
	Forecast CapacityForecast `json:"forecast_days"`
}

// CapacityReport is the capacity of every node and of the cluster (GET
// /v1/capacity), with forecasts fitted over the last WindowDays of hourly
// allocation samples.
type CapacityReport struct {
	WindowDays int             `json:"window_days"`
	Cluster    ClusterCapacity `json:"cluster"`
	Nodes      []NodeCapacity  `json:"nodes"`
}

// Capacity reads the capacity report (GET /v1/capacity). window is the
// allocation history the forecasts fit, "1d" to "90d"; empty means the
// server's default, 30d.
func (c *Client) Capacity(ctx context.Context, window string) (*CapacityReport, *Meta, error) {
	v := url.Values{}
	setNonEmpty(v, "window", window)
	return getOne[CapacityReport](ctx, c, capacityPath, v, nil)
}

// DefaultPolicyID names the capacity policy of the nodes in no group.
const DefaultPolicyID = "default"

// CapacityPolicy is the overcommit policy of a group of nodes, or with ID
// DefaultPolicyID and no Nodes of every node in no group. A node may be
// allocated floor(physical × ratio) − reserve of each resource; a ratio
// of 0 means 1.
type CapacityPolicy struct {
	ID               string   `json:"id"`
	Nodes            []string `json:"nodes,omitempty"`
	CPURatio         float64  `json:"cpu_ratio"`
	MemoryRatio      float64  `json:"memory_ratio"`
	DiskRatio        float64  `json:"disk_ratio"`
	ReserveVCPUs     int64    `json:"reserve_vcpus"`
	ReserveMemoryMiB int64    `json:"reserve_memory_mib"`
	ReserveDiskGiB   int64    `json:"reserve_disk_gib"`
	CreateIndex      uint64   `json:"create_index,omitempty"`
	ModifyIndex      uint64   `json:"modify_index,omitempty"`
	UpdatedAt        Time     `json:"updated_at,omitzero"`
}

// CapacityPolicies are the stored policies and the built-in one that
// applies to nodes in no group while no DefaultPolicyID policy is stored.
type CapacityPolicies struct {
	Policies []CapacityPolicy `json:"policies"`
	Builtin  CapacityPolicy   `json:"builtin_default"`
}

// CapacityPolicyRequest sets a policy. It replaces the whole policy: a
// ratio left 0 is 1, a reserve left 0 is none. Nodes is empty for the
// default policy and names at least one node for a group; a node is in at
// most one group.
type CapacityPolicyRequest struct {
	Nodes            []string `json:"nodes,omitempty"`
	CPURatio         float64  `json:"cpu_ratio,omitempty"`
	MemoryRatio      float64  `json:"memory_ratio,omitempty"`
	DiskRatio        float64  `json:"disk_ratio,omitempty"`
	ReserveVCPUs     int64    `json:"reserve_vcpus,omitempty"`
	ReserveMemoryMiB int64    `json:"reserve_memory_mib,omitempty"`
	ReserveDiskGiB   int64    `json:"reserve_disk_gib,omitempty"`
}

// CapacityPolicyList lists the capacity policies by ID and the built-in
// default (GET /v1/capacity/policies).
func (c *Client) CapacityPolicyList(ctx context.Context, q *QueryOptions) (*CapacityPolicies, *Meta, error) {
	out, m, err := getOne[CapacityPolicies](ctx, c, capacityPoliciesPath, nil, q)
	if err != nil {
		return nil, nil, err
	}
	out.Builtin.ID = DefaultPolicyID
	return out, m, nil
}

// CapacityPolicyPut creates or replaces a capacity policy (PUT
// /v1/capacity/policies/{id}). VM placement honours it from then on.
func (c *Client) CapacityPolicyPut(ctx context.Context, id string, req CapacityPolicyRequest, w *WriteOptions) (*CapacityPolicy, *Meta, error) {
	return writeOne[CapacityPolicy](ctx, c, http.MethodPut, itemPath(capacityPoliciesPath, id), req, w)
}

// CapacityPolicyDelete deletes a capacity policy (DELETE
// /v1/capacity/policies/{id}), whose nodes fall back to the default
// policy, and returns it as it was.
func (c *Client) CapacityPolicyDelete(ctx context.Context, id string, w *WriteOptions) (*CapacityPolicy, *Meta, error) {
	return writeOne[CapacityPolicy](ctx, c, http.MethodDelete, itemPath(capacityPoliciesPath, id), nil, w)
}
