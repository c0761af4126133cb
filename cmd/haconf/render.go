package main

import "github.com/spf13/cobra"

func newRenderCmd(g *globals) *cobra.Command { return &cobra.Command{Use: "render", Hidden: true} }
func newPlanCmd(g *globals) *cobra.Command   { return &cobra.Command{Use: "plan", Hidden: true} }
