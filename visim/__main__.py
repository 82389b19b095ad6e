from visim.cli import main

raise SystemExit(main())
