from slmscale.cli import main

raise SystemExit(main())
