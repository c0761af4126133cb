package cli

import (
	"fmt"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// StringEnumFlag registers a string flag that accepts only one of values. Its
// help lists them; any other value is refused while the flags are parsed,
// with an error naming them (a usage error, exit 64, under Setup). The
// shell completes the values.
func StringEnumFlag(cmd *cobra.Command, p *string, name, shorthand, defaultValue string, values []string, usage string) *pflag.Flag {
	*p = defaultValue
	v := &enumValue{p: p, values: values}
	f := cmd.Flags().VarPF(v, name, shorthand, fmt.Sprintf("%s: {%s}", usage, strings.Join(values, "|")))
	v.flag = f
	_ = cmd.RegisterFlagCompletionFunc(name, func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		return values, cobra.ShellCompDirectiveNoFileComp
	})
	return f
}

// OutputFlag registers -o/--output, the output format, as a StringEnumFlag
// of formats; the first is the default.
//
//	cli.OutputFlag(cmd, &o.output, "text", "json")
func OutputFlag(cmd *cobra.Command, p *string, formats ...string) *pflag.Flag {
	return StringEnumFlag(cmd, p, "output", "o", formats[0], formats, "output format")
}

// IsEnumFlag reports whether f was registered by StringEnumFlag, and its
// allowed values.
func IsEnumFlag(f *pflag.Flag) ([]string, bool) {
	v, ok := f.Value.(*enumValue)
	if !ok {
		return nil, false
	}
	return slices.Clone(v.values), true
}

type enumValue struct {
	p      *string
	values []string
	flag   *pflag.Flag
}

func (e *enumValue) Set(s string) error {
	if !slices.Contains(e.values, s) {
		return &EnumError{Flag: e.flag, Value: s, Values: e.values}
	}
	*e.p = s
	return nil
}

func (e *enumValue) String() string { return *e.p }

func (e *enumValue) Type() string { return "string" }

// EnumError is a value a StringEnumFlag refused.
type EnumError struct {
	Flag   *pflag.Flag
	Value  string
	Values []string
}

func (e *EnumError) Error() string {
	name := "--" + e.Flag.Name
	if e.Flag.Shorthand != "" {
		name = "-" + e.Flag.Shorthand
	}
	return fmt.Sprintf("invalid value %q for %s: want one of %s", e.Value, name, strings.Join(e.Values, ", "))
}
