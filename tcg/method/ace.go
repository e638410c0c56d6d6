package method

import (
	"fmt"

	"github.com/shiftlock/shiftlock/tcg/token"
)

// BoolOp is a Boolean_ACE operator in an ACE BooleanExpr.
type BoolOp uint8

// Boolean_ACE operators (PROTOCOL.md 1.7).
const (
	And BoolOp = 0
	Or  BoolOp = 1
)

// String returns "AND" or "OR".
func (op BoolOp) String() string {
	switch op {
	case And:
		return "AND"
	case Or:
		return "OR"
	}
	return fmt.Sprintf("BoolOp(%d)", uint8(op))
}

// An ACETerm is one element of a BooleanExpr in postfix order: an authority
// reference, or an operator on the terms before it.
type ACETerm struct {
	Authority UID    // when !IsOp
	Op        BoolOp // when IsOp
	IsOp      bool
}

// AuthorityTerm returns the term that refers to authority a.
func AuthorityTerm(a UID) ACETerm { return ACETerm{Authority: a} }

// OpTerm returns the operator term op.
func OpTerm(op BoolOp) ACETerm { return ACETerm{Op: op, IsOp: true} }

// BooleanExpr returns the token form of a BooleanExpr (ACE column 3):
// authority references as Authority_object_ref=UID and operators as
// Boolean_ACE=op, in the given (postfix) order.
func BooleanExpr(terms ...ACETerm) token.Value {
	items := make([]token.Value, len(terms))
	for i, t := range terms {
		if t.IsOp {
			items[i] = token.Pair(HalfBooleanACE.Value(), token.Uint(uint64(t.Op)))
		} else {
			items[i] = token.Pair(HalfAuthorityObjectRef.Value(), t.Authority.Value())
		}
	}
	return token.List(items...)
}

// AnyOf returns the BooleanExpr that grants access to any of authorities:
// "a1 a2 OR a3 OR ..." in postfix form, as the kernel writes "Admin1 OR
// UserN". One authority gives a single reference; none gives an empty
// expression.
func AnyOf(authorities ...UID) token.Value {
	terms := make([]ACETerm, 0, 2*len(authorities))
	for i, a := range authorities {
		terms = append(terms, AuthorityTerm(a))
		if i > 0 {
			terms = append(terms, OpTerm(Or))
		}
	}
	return BooleanExpr(terms...)
}

// ParseBooleanExpr reads a BooleanExpr value into its postfix terms. Errors
// wrap StatusInvalidParameter.
func ParseBooleanExpr(v token.Value) ([]ACETerm, error) {
	items, err := v.AsList()
	if err != nil {
		return nil, invalid("BooleanExpr: %v", err)
	}
	terms := make([]ACETerm, 0, len(items))
	for _, it := range items {
		name, val, ok := it.NameValue()
		if !ok {
			return nil, invalid("BooleanExpr item %v is not a named value", it.Kind())
		}
		nb, err := name.AsBytes()
		if err != nil || len(nb) != 4 {
			return nil, invalid("BooleanExpr item name %v is not a half-UID", name)
		}
		switch HalfUID(nb) {
		case HalfAuthorityObjectRef:
			a, err := UIDFromValue(val)
			if err != nil {
				return nil, invalid("BooleanExpr authority: %v", err)
			}
			terms = append(terms, AuthorityTerm(a))
		case HalfBooleanACE:
			if val.Kind() == token.KindBytes {
				return nil, invalid("BooleanExpr operator %v", val)
			}
			op, err := val.AsUint()
			if err != nil || op > uint64(Or) {
				return nil, invalid("BooleanExpr operator %v", val)
			}
			terms = append(terms, OpTerm(BoolOp(op)))
		default:
			return nil, invalid("BooleanExpr item name %x unknown", nb)
		}
	}
	return terms, nil
}

// EvalBooleanExpr evaluates postfix terms for a session in which has(a)
// reports whether authority a is authenticated (class authorities such as
// Admins are has's business). An empty expression is false. A malformed
// expression (an operator short of operands, operands left over) is an
// error wrapping StatusInvalidParameter.
func EvalBooleanExpr(terms []ACETerm, has func(UID) bool) (bool, error) {
	if len(terms) == 0 {
		return false, nil
	}
	stack := make([]bool, 0, len(terms))
	for i, t := range terms {
		if !t.IsOp {
			stack = append(stack, has(t.Authority))
			continue
		}
		n := len(stack)
		if n < 2 {
			return false, invalid("BooleanExpr term %d: %v needs 2 operands", i, t.Op)
		}
		switch t.Op {
		case And:
			stack = append(stack[:n-2], stack[n-2] && stack[n-1])
		case Or:
			stack = append(stack[:n-2], stack[n-2] || stack[n-1])
		default:
			return false, invalid("BooleanExpr term %d: operator %v", i, t.Op)
		}
	}
	if len(stack) != 1 {
		return false, invalid("BooleanExpr leaves %d values", len(stack))
	}
	return stack[0], nil
}
