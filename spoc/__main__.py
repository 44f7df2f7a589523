from spoc.cli import main

raise SystemExit(main())
