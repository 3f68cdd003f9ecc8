"""Rich renderables for the CLI: small classes that build tables from library objects and never
print. The CLI hands them to a Console; tests render them into a fixed-width, colourless one."""
