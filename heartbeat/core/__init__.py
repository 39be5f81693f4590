"""What every phase shares: errors, the params schema, logging, atomic writes, the layout of outputs,
and the two data formats (beat CSVs, row splits)."""
