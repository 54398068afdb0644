package fsm

import (
	"fmt"

	"github.com/hashicorp/go-memdb"
)

// applyFunc applies one decoded command inside a write transaction. It
// returns the command's result or an error; on error the transaction is
// aborted and nothing changes.
type applyFunc func(txn *memdb.Txn, index uint64, cmd Command) (any, error)

type commandInfo struct {
	name  string
	new   func() Command
	apply applyFunc
}

// commands is the registration table: every message type, its name, its
// decoder and its apply function, in one place.
var commands = map[MessageType]commandInfo{}

func register(t MessageType, name string, newCmd func() Command, apply applyFunc) {
	if _, dup := commands[t]; dup {
		panic(fmt.Sprintf("fsm: message type %d registered twice", t))
	}
	if got := newCmd().Type(); got != t {
		panic(fmt.Sprintf("fsm: %s: constructor returns type %d, want %d", name, got, t))
	}
	commands[t] = commandInfo{name: name, new: newCmd, apply: apply}
}

func init() {
	register(SettingUpsertType, "setting_upsert", func() Command { return new(SettingUpsertRequest) }, applySettingUpsert)
	register(SettingDeleteType, "setting_delete", func() Command { return new(SettingDeleteRequest) }, applySettingDelete)
	register(ACLBootstrapType, "acl_bootstrap", func() Command { return new(ACLBootstrapRequest) }, applyACLBootstrap)
	register(TokenCreateType, "token_create", func() Command { return new(TokenCreateRequest) }, applyTokenCreate)
	register(TokenRevokeType, "token_revoke", func() Command { return new(TokenRevokeRequest) }, applyTokenRevoke)
	register(IdempotencyReapType, "idempotency_reap", func() Command { return new(IdempotencyReapRequest) }, applyIdempotencyReap)
	register(VRFCreateType, "vrf_create", func() Command { return new(VRFCreateRequest) }, validated(applyVRFCreate))
	register(VRFDeleteType, "vrf_delete", func() Command { return new(VRFDeleteRequest) }, applyVRFDelete)
	register(PrefixCreateType, "prefix_create", func() Command { return new(PrefixCreateRequest) }, validated(applyPrefixCreate))
	register(PrefixUpdateType, "prefix_update", func() Command { return new(PrefixUpdateRequest) }, validated(applyPrefixUpdate))
	register(PrefixDeleteType, "prefix_delete", func() Command { return new(PrefixDeleteRequest) }, applyPrefixDelete)
	register(PrefixAllocateType, "prefix_allocate", func() Command { return new(PrefixAllocateRequest) }, validated(applyPrefixAllocate))
	register(IPRangeCreateType, "ip_range_create", func() Command { return new(IPRangeCreateRequest) }, validated(applyIPRangeCreate))
	register(IPRangeDeleteType, "ip_range_delete", func() Command { return new(IPRangeDeleteRequest) }, applyIPRangeDelete)
	register(AddressAllocateType, "address_allocate", func() Command { return new(AddressAllocateRequest) }, validated(applyAddressAllocate))
	register(AddressUpdateType, "address_update", func() Command { return new(AddressUpdateRequest) }, validated(applyAddressUpdate))
	register(AddressReleaseType, "address_release", func() Command { return new(AddressReleaseRequest) }, applyAddressRelease)
	register(PoolCreateType, "pool_create", func() Command { return new(PoolCreateRequest) }, validated(applyPoolCreate))
	register(PoolDeleteType, "pool_delete", func() Command { return new(PoolDeleteRequest) }, applyPoolDelete)
	register(IDAllocateType, "id_allocate", func() Command { return new(IDAllocateRequest) }, validated(applyIDAllocate))
	register(IDReleaseType, "id_release", func() Command { return new(IDReleaseRequest) }, applyIDRelease)
	register(ZoneCreateType, "zone_create", func() Command { return new(ZoneCreateRequest) }, validated(applyZoneCreate))
	register(ZoneDeleteType, "zone_delete", func() Command { return new(ZoneDeleteRequest) }, applyZoneDelete)
	register(QuarantineDrainType, "quarantine_drain", func() Command { return new(QuarantineDrainRequest) }, applyQuarantineDrain)
	register(InventorySyncType, "inventory_sync", func() Command { return new(InventorySyncRequest) }, validated(applyInventorySync))
	register(InventoryStaleType, "inventory_stale", func() Command { return new(InventoryStaleRequest) }, validated(applyInventoryStale))
	register(OperationCreateType, "operation_create", func() Command { return new(OperationCreateRequest) }, validated(applyOperationCreate))
	register(OperationUpdateType, "operation_update", func() Command { return new(OperationUpdateRequest) }, validated(applyOperationUpdate))
	register(AuditRecordType, "audit_record", func() Command { return new(AuditRecordRequest) }, validated(applyAuditRecord))
	register(AuditCheckpointType, "audit_checkpoint", func() Command { return new(AuditCheckpointRequest) }, validated(applyAuditCheckpoint))
	register(AuditTruncateType, "audit_truncate", func() Command { return new(AuditTruncateRequest) }, applyAuditTruncate)
	register(SecretPutType, "secret_put", func() Command { return new(SecretPutRequest) }, validated(applySecretPut))
	register(SecretDeleteType, "secret_delete", func() Command { return new(SecretDeleteRequest) }, applySecretDelete)
	register(SecretKeyWrapType, "secret_key_wrap", func() Command { return new(SecretKeyWrapRequest) }, validated(applySecretKeyWrap))
	register(TenantCreateType, "tenant_create", func() Command { return new(TenantCreateRequest) }, validated(applyTenantCreate))
	register(TenantUpdateType, "tenant_update", func() Command { return new(TenantUpdateRequest) }, validated(applyTenantUpdate))
	register(TenantDeleteType, "tenant_delete", func() Command { return new(TenantDeleteRequest) }, applyTenantDelete)
	register(ProjectCreateType, "project_create", func() Command { return new(ProjectCreateRequest) }, validated(applyProjectCreate))
	register(ProjectUpdateType, "project_update", func() Command { return new(ProjectUpdateRequest) }, validated(applyProjectUpdate))
	register(ProjectDeleteType, "project_delete", func() Command { return new(ProjectDeleteRequest) }, applyProjectDelete)
	register(MeterTickType, "meter_tick", func() Command { return new(MeterTickRequest) }, applyMeterTick)
	register(RateCardPutType, "rate_card_put", func() Command { return new(RateCardPutRequest) }, validated(applyRateCardPut))
	register(RateCardDeleteType, "rate_card_delete", func() Command { return new(RateCardDeleteRequest) }, applyRateCardDelete)
	register(CapacityPolicyPutType, "capacity_policy_put", func() Command { return new(CapacityPolicyPutRequest) }, validated(applyCapacityPolicyPut))
	register(CapacityPolicyDeleteType, "capacity_policy_delete", func() Command { return new(CapacityPolicyDeleteRequest) }, applyCapacityPolicyDelete)
	register(SDNZonePutType, "sdn_zone_put", func() Command { return new(SDNZonePutRequest) }, validated(applySDNZonePut))
	register(SDNZoneDeleteType, "sdn_zone_delete", func() Command { return new(SDNZoneDeleteRequest) }, applySDNZoneDelete)
	register(SDNVnetPutType, "sdn_vnet_put", func() Command { return new(SDNVnetPutRequest) }, validated(applySDNVnetPut))
	register(SDNVnetDeleteType, "sdn_vnet_delete", func() Command { return new(SDNVnetDeleteRequest) }, applySDNVnetDelete)
	register(SDNSubnetPutType, "sdn_subnet_put", func() Command { return new(SDNSubnetPutRequest) }, validated(applySDNSubnetPut))
	register(SDNSubnetDeleteType, "sdn_subnet_delete", func() Command { return new(SDNSubnetDeleteRequest) }, applySDNSubnetDelete)
	register(SDNAllowPutType, "sdn_allow_put", func() Command { return new(SDNAllowPutRequest) }, validated(applySDNAllowPut))
	register(SDNAllowDeleteType, "sdn_allow_delete", func() Command { return new(SDNAllowDeleteRequest) }, applySDNAllowDelete)
	register(SDNHostPutType, "sdn_host_put", func() Command { return new(SDNHostPutRequest) }, validated(applySDNHostPut))
	register(SDNHostDeleteType, "sdn_host_delete", func() Command { return new(SDNHostDeleteRequest) }, applySDNHostDelete)
	register(SDNApplyType, "sdn_apply", func() Command { return new(SDNApplyRequest) }, validated(applySDNApply))
	register(SDNReportType, "sdn_report", func() Command { return new(SDNReportRequest) }, validated(applySDNReport))
	register(SDNRolloutAbortType, "sdn_rollout_abort", func() Command { return new(SDNRolloutAbortRequest) }, validated(applySDNRolloutAbort))
	register(StoragePolicyPutType, "storage_policy_put", func() Command { return new(StoragePolicyPutRequest) }, validated(applyStoragePolicyPut))
	register(StoragePolicyDeleteType, "storage_policy_delete", func() Command { return new(StoragePolicyDeleteRequest) }, applyStoragePolicyDelete)
	register(PolicyTickType, "policy_tick", func() Command { return new(PolicyTickRequest) }, validated(applyPolicyTick))
	register(RunItemUpdateType, "run_item_update", func() Command { return new(RunItemUpdateRequest) }, validated(applyRunItemUpdate))
	register(PruneRecordType, "prune_record", func() Command { return new(PruneRecordRequest) }, applyPruneRecord)
	register(RecordProtectType, "record_protect", func() Command { return new(RecordProtectRequest) }, validated(applyRecordProtect))
	register(StorageSyncType, "storage_sync", func() Command { return new(StorageSyncRequest) }, applyStorageSync)
	register(PoolSettingsPutType, "pool_settings_put", func() Command { return new(PoolSettingsPutRequest) }, validated(applyPoolSettingsPut))
	register(DRPlanPutType, "dr_plan_put", func() Command { return new(DRPlanPutRequest) }, validated(applyDRPlanPut))
	register(DRPlanDeleteType, "dr_plan_delete", func() Command { return new(DRPlanDeleteRequest) }, applyDRPlanDelete)
	register(DRReplicaSyncType, "dr_replica_sync", func() Command { return new(DRReplicaSyncRequest) }, validated(applyDRReplicaSync))
	register(DRRunStartType, "dr_run_start", func() Command { return new(DRRunStartRequest) }, validated(applyDRRunStart))
	register(DRItemUpdateType, "dr_item_update", func() Command { return new(DRItemUpdateRequest) }, validated(applyDRItemUpdate))
	register(DRFenceType, "dr_fence", func() Command { return new(DRFenceRequest) }, applyDRFence)
	register(DRFailoverEndType, "dr_failover_end", func() Command { return new(DRFailoverEndRequest) }, applyDRFailoverEnd)
	register(RetentionPruneType, "retention_prune", func() Command { return new(RetentionPruneRequest) }, applyRetentionPrune)
	register(DRIsolationType, "dr_isolation", func() Command { return new(DRIsolationRequest) }, validated(applyDRIsolation))
	register(RestoreMarkType, "restore_mark", func() Command { return new(RestoreMarkRequest) }, applyRestoreMark)
	register(PoolUpdateType, "pool_update", func() Command { return new(PoolUpdateRequest) }, validated(applyPoolUpdate))
	register(IDUpdateType, "id_update", func() Command { return new(IDUpdateRequest) }, validated(applyIDUpdate))
	register(ZoneUpdateType, "zone_update", func() Command { return new(ZoneUpdateRequest) }, validated(applyZoneUpdate))
	register(DNSSerialMarkType, "dns_serial_mark", func() Command { return new(DNSSerialMarkRequest) }, applyDNSSerialMark)
	register(DRRunRetryType, "dr_run_retry", func() Command { return new(DRRunRetryRequest) }, applyDRRunRetry)
	register(LineageCheckType, "lineage_check", func() Command { return new(LineageCheckRequest) }, applyLineageCheck)
	// BatchType is dispatched by Apply itself; its entry exists for decoding.
	register(BatchType, "batch", func() Command { return new(BatchRequest) }, nil)
}

// MessageTypes returns every registered message type, for tests and metrics.
func MessageTypes() []MessageType {
	out := make([]MessageType, 0, len(commands))
	for t := range commands {
		out = append(out, t)
	}
	return out
}
