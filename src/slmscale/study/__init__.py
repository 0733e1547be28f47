"""The main job: the whole scaling study, world to report (`slmscale study`), and its config."""
