// Command as-tag sets, moves, deletes and lists tags: mutable, logged names
// for a finalised version (docs/adr/0010-tags-and-expiry.md).
package main

import (
	"context"
	"fmt"

	"github.com/artifactstore/artifact-store/internal/cli"
	"github.com/artifactstore/artifact-store/pkg/ref"
	"github.com/artifactstore/artifact-store/pkg/registry"
	"github.com/artifactstore/artifact-store/pkg/store"
)

const usage = `Usage: as-tag [flags] REF TAG         point TAG at the version REF names
       as-tag [flags] --delete NAME:TAG  remove a tag
       as-tag [flags] --list NAME        the tags of NAME

A tag is a mutable name for a finalised version of the same package name
(NAME:TAG). Setting or moving it is a v1.tag.set event (with the previous
target), deleting it a v1.tag.deleted event; a manifest never changes.
Tags follow the OCI tag grammar [A-Za-z0-9_][A-Za-z0-9._-]{0,127} and may
not take the text of an existing version. REF is NAME@VERSION, NAME:TAG or
NAME@blake3:…. Every tool that takes a package reference takes NAME:TAG.

Output: one tag record {name, tag, version, previous} per tag set, deleted
or listed; JSON lines on a terminal or with --json, else canonical CBOR.

Exit status: 0 done, 1 failure, 2 usage or a malformed tag, 3 package or
tag not found, 5 the package is not finalised or TAG is a version's text,
6 store unavailable, 130 interrupted.

Examples:
    as-tag app@1.2.3 stable
    as-tag app:stable previous          # tag what stable points at
    as-tag --list app --json | jq -r .tag
    as-tag --delete app:stable
    as-get --package app:stable bin/app -o app
`

func main() { cli.Main("as-tag", run) }

func run(ctx context.Context, args []string, stdio cli.Stdio) error {
	fs := cli.FlagSet("as-tag", usage, stdio.Out)
	flags := cli.RegisterStoreFlags(fs)
	del := fs.String("delete", "", "delete the tag `NAME:TAG`")
	list := fs.String("list", "", "list the tags of package `NAME`")
	asJSON := fs.Bool("json", false, "write JSON lines instead of CBOR")
	version := fs.Bool("version", false, "print the version and exit")
	pos, err := cli.Parse(fs, args)
	if err != nil {
		return err
	}
	if *version {
		fmt.Fprintln(stdio.Out, "as-tag", cli.Version())
		return nil
	}
	switch {
	case *del != "" && (*list != "" || len(pos) > 0), *list != "" && len(pos) > 0:
		return cli.Usagef("give one of: REF TAG, --delete NAME:TAG, --list NAME")
	case *del != "":
		name, tag, err := registry.ParseTagRef(*del)
		if err != nil {
			return cli.Usagef("--delete: %v", err)
		}
		st, err := flags.Open(ctx, "as-tag", store.Write)
		if err != nil {
			return err
		}
		defer st.Close()
		res, err := st.Registry.DeleteTag(ctx, name, tag)
		if err != nil {
			return err
		}
		return cli.WriteRecords(stdio.Out, *asJSON, res.Tag)
	case *list != "":
		if err := ref.CheckName(*list); err != nil {
			return cli.Usagef("--list: %v", err)
		}
		st, err := flags.Open(ctx, "as-tag", store.Read)
		if err != nil {
			return err
		}
		defer st.Close()
		tags, err := st.Registry.Tags(ctx, *list)
		if err != nil {
			return err
		}
		return cli.WriteRecords(stdio.Out, *asJSON, tags...)
	case len(pos) != 2:
		return cli.Usagef("want REF TAG (e.g. as-tag app@1.2.3 stable), --delete NAME:TAG or --list NAME")
	}
	target, err := ref.Parse(pos[0])
	if err != nil {
		return cli.Usagef("%v", err)
	}
	if err := ref.CheckTag(pos[1]); err != nil {
		return cli.Usagef("TAG: %v", err)
	}
	st, err := flags.Open(ctx, "as-tag", store.Write)
	if err != nil {
		return err
	}
	defer st.Close()
	res, err := st.Registry.SetTag(ctx, target, pos[1])
	if err != nil {
		return err
	}
	if res.Unchanged {
		fmt.Fprintf(stdio.Err, "as-tag: %s:%s already points at %s\n", res.Name, res.Tag, res.Version)
	}
	return cli.WriteRecords(stdio.Out, *asJSON, res.Tag)
}
