package fsm

import (
	"fmt"

	"github.com/hashicorp/go-memdb"
)

func applySettingUpsert(txn *memdb.Txn, index uint64, c Command) (any, error) {
	req := c.(*SettingUpsertRequest)
	raw, err := txn.First(tableSettings, "id", req.Key)
	if err != nil {
		return nil, err
	}
	s := &Setting{Key: req.Key, Value: req.Value, CreateIndex: index, ModifyIndex: index, UpdatedAt: req.Now}
	if raw != nil {
		old := raw.(*Setting)
		s.CreateIndex = old.CreateIndex
		if req.CASIndex != nil && *req.CASIndex != old.ModifyIndex {
			return nil, fmt.Errorf("%w: setting %q has modify index %d, not %d", ErrConflict, req.Key, old.ModifyIndex, *req.CASIndex)
		}
	} else if req.CASIndex != nil && *req.CASIndex != 0 {
		return nil, fmt.Errorf("%w: setting %q does not exist", ErrConflict, req.Key)
	}
	if err := insert(txn, tableSettings, index, s); err != nil {
		return nil, err
	}
	return s, nil
}

func applySettingDelete(txn *memdb.Txn, index uint64, c Command) (any, error) {
	req := c.(*SettingDeleteRequest)
	raw, err := txn.First(tableSettings, "id", req.Key)
	if err != nil {
		return nil, err
	}
	if raw == nil {
		return nil, &NotFoundError{What: "setting", ID: req.Key}
	}
	if err := remove(txn, tableSettings, index, raw); err != nil {
		return nil, err
	}
	return raw, nil
}

func applyACLBootstrap(txn *memdb.Txn, index uint64, c Command) (any, error) {
	req := c.(*ACLBootstrapRequest)
	raw, err := txn.First(tableACL, "id", "acl")
	if err != nil {
		return nil, err
	}
	if raw != nil && raw.(*ACLState).Bootstrapped {
		return nil, ErrAlreadyBootstrapped
	}
	tok, err := createToken(txn, index, req.Token)
	if err != nil {
		return nil, err
	}
	if err := insert(txn, tableACL, index, &ACLState{ID: "acl", Bootstrapped: true, BootstrapIndex: index}); err != nil {
		return nil, err
	}
	return tok, nil
}

func applyTokenCreate(txn *memdb.Txn, index uint64, c Command) (any, error) {
	return createToken(txn, index, c.(*TokenCreateRequest).Token)
}

func createToken(txn *memdb.Txn, index uint64, t Token) (*Token, error) {
	if t.AccessorID == "" || t.SecretHash == "" {
		return nil, fmt.Errorf("fsm: token without accessor ID or secret hash")
	}
	if raw, err := txn.First(tableTokens, "id", t.AccessorID); err != nil {
		return nil, err
	} else if raw != nil {
		return nil, fmt.Errorf("%w: token %s already exists", ErrConflict, t.AccessorID)
	}
	// The secret index is unique but memdb does not enforce that on
	// secondary indexes: a duplicate would shadow the other token.
	if raw, err := txn.First(tableTokens, "secret", t.SecretHash); err != nil {
		return nil, err
	} else if raw != nil {
		return nil, fmt.Errorf("%w: a token with this secret already exists", ErrConflict)
	}
	t.CreateIndex = index
	tok := &t
	if err := insert(txn, tableTokens, index, tok); err != nil {
		return nil, err
	}
	return tok, nil
}

func applyTokenRevoke(txn *memdb.Txn, index uint64, c Command) (any, error) {
	req := c.(*TokenRevokeRequest)
	raw, err := txn.First(tableTokens, "id", req.AccessorID)
	if err != nil {
		return nil, err
	}
	if raw == nil {
		return nil, notFound("token", req.AccessorID)
	}
	if err := remove(txn, tableTokens, index, raw); err != nil {
		return nil, err
	}
	return raw, nil
}
